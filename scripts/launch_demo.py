#!/usr/bin/env python3
"""`make launch-demo`: the launcher end to end on this machine, no AWS account needed.

    python scripts/launch_demo.py [--record FILE]

Starts a moto server (a local stand-in for AWS's APIs) on 127.0.0.1 at a free port, in a
process of its own, uploads the sample data to a bucket there, then runs the launcher's
command line as a user would, one `python -m launcher` process per step:

    train -> tune -> describe -> deploy (with autoscaling) -> invoke -> transform -> delete

and prints, after each, the requests it sent (as moto's request recorder kept them: the
writes in full, the reads by name). It ends by checking that `delete` left nothing
behind, says what the run proves and what it cannot, stops moto and removes its
temporary folder, whatever happened. `--record FILE` also writes every request as JSON
(tests/integration/test_launch_demo.py checks them against botocore's API model).

What the launcher needs to talk to moto instead of AWS is set for each step (`environment`):
AWS_ENDPOINT_URL, fake credentials, a region, SAGEMAKER_VALIDATE_ROLE=false (moto has no
iam:SimulatePrincipalPolicy for the SDK's role check), an empty AWS config, and every
proxy pointing at a closed port with NO_PROXY for loopback (the SDK's telemetry, or
anything else bound elsewhere, fails at once instead of leaving the machine). Where moto
answers unlike SageMaker, `patch_moto` corrects it inside the moto process; moto's own
code is not edited. Instance types are ml.g4dn: moto's CreateEndpointConfig knows an old
list without ml.g5, the launcher's default.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
BUCKET = "launch-demo"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/text-classifier:latest"
INSTANCE = "ml.g4dn.xlarge"  # moto refuses ml.g5 endpoints
ENDPOINT = "demo-endpoint"
TUNING_JOB = "demo-tune"
TRANSFORM_JOB = "demo-batch"
# What moto answers every invocation: no container runs, so no model answers.
CANNED = {"label": "shipping", "score": 0.91, "note": "moto's canned answer: no model ran"}
STEP_TIMEOUT = 120  # seconds, per launcher command
# JSON-protocol services as their X-Amz-Target prefix names them.
TARGETS = {"SageMaker": "sagemaker", "AnyScaleFrontendService": "application-autoscaling",
           "Logs_20140328": "logs"}  # fmt: skip
READS = ("Describe", "List", "Get", "Head")


# --- the moto process -----------------------------------------------------------------------
def patch_describes(setattr_=setattr) -> None:
    """DescribeModel, DescribeEndpointConfig and DescribeEndpoint as SageMaker answers
    them: moto answers an unset VpcConfig or DataCaptureConfig as `{}`, which SageMaker
    leaves out and the SDK's pydantic shapes refuse (plain moto: "vpc_config ... Field
    required"); and DescribeEndpoint answers the endpoint config's DataCaptureConfig
    where SageMaker answers a DataCaptureConfigSummary (CaptureStatus,
    CurrentSamplingPercentage). tests/integration/test_launcher.py's moto uses these too.
    `setattr_(owner, name, value)` sets each (a test passes monkeypatch's)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    def omit_empty_structures(describe):
        def patched(self):
            result = {k: v for k, v in describe(self).result.items() if v != {}}
            capture = result.get("DataCaptureConfig")
            if describe.__name__ == "describe_endpoint" and capture:
                result["DataCaptureConfig"] = {
                    "EnableCapture": capture["EnableCapture"],
                    "CaptureStatus": "Started",
                    "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                    "DestinationS3Uri": capture["DestinationS3Uri"],
                }
            return ActionResult(result)

        patched.__name__ = describe.__name__
        return patched

    for name in ("describe_model", "describe_endpoint_config", "describe_endpoint"):
        setattr_(SageMakerResponse, name, omit_empty_structures(getattr(SageMakerResponse, name)))


def patch_moto(setattr_=setattr) -> None:
    """Make moto answer as SageMaker does where the launcher's SDK reads the difference:
    the describes (`patch_describes`), and tuning: moto runs no trials, yet answers a
    tuning job as Completed with a made-up best trial (FakeTrainingJobName), and
    ListTrainingJobsForHyperParameterTuningJob is not implemented. Both are answered as
    SageMaker would for a job whose trials have not started: InProgress, no trials, no
    best one. (The tests play the trials' part instead: `ran_trials`.)"""
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    patch_describes(setattr_)

    def no_trials(self):
        return ActionResult({"TrainingJobSummaries": []})

    describe_tuning = SageMakerResponse.describe_hyper_parameter_tuning_job

    def tuning_without_trials(self):
        result = dict(describe_tuning(self).result)
        result.pop("BestTrainingJob", None)
        result["HyperParameterTuningJobStatus"] = "InProgress"
        result["TrainingJobStatusCounters"] = {
            k: 0 for k in result.get("TrainingJobStatusCounters") or {}
        }
        return ActionResult(result)

    setattr_(SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job", no_trials)
    setattr_(SageMakerResponse, "describe_hyper_parameter_tuning_job", tuning_without_trials)


def serve_moto(recording: Path) -> None:
    """The moto process: patch, serve on a free loopback port, print the port, record
    every request to `recording`; stop when stdin closes (the demo ended or died)."""
    import logging

    os.environ["MOTO_ENABLE_RECORDING"] = "true"  # read when moto is imported
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the demo closes our stdin
    server.stop()


# --- the demo -------------------------------------------------------------------------------
def environment(endpoint_url: str, home: Path) -> dict[str, str]:
    """What a launcher process needs to talk to moto, and to nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("SAGEMAKER_ROLE_ARN", "IMAGE_URI", "no_proxy", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_VALIDATE_ROLE": "false",
            "SAGEMAKER_ROLE_ARN": ROLE,
            "IMAGE_URI": IMAGE,
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


class Recording:
    """moto's request log, read step by step."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.requests: list[dict[str, Any]] = []

    def new(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open() as f:
            f.seek(self.offset)
            lines = f.readlines()
            self.offset = f.tell()
        found = [parsed(json.loads(line)) for line in lines if line.strip()]
        found = [request for request in found if request is not None]
        self.requests += found
        return found


def parsed(entry: dict[str, Any]) -> dict[str, Any] | None:
    """{service, operation, params} of one recorded request, as the API names them; None
    for the demo's own calls to moto's control API (/moto-api/)."""
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    body = entry.get("body") or ""
    raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
    target = headers.get("x-amz-target", "")
    path = entry.get("url", "").split("://", 1)[-1].partition("/")[2].split("?")[0]
    if path.startswith("moto-api/"):
        return None
    if target:
        prefix, _, operation = target.partition(".")
        return {"service": TARGETS.get(prefix, prefix), "operation": operation,
                "params": json.loads(raw or b"{}")}  # fmt: skip
    if path.startswith("endpoints/") and path.endswith("/invocations"):
        params = {"EndpointName": path.split("/")[1], "ContentType": headers.get("content-type"),
                  "Body": raw.decode("utf-8", "replace")}  # fmt: skip
        return {"service": "sagemaker-runtime", "operation": "InvokeEndpoint", "params": params}
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        scope = headers.get("authorization", "").split("Credential=", 1)[-1].split("/")
        service = scope[3] if len(scope) > 3 else "?"
        return {"service": service, "operation": form.pop("Action", "?"), "params": form}
    if "/operation/" in path:  # Smithy RPC v2 CBOR (CloudWatch): the body is binary
        return {"service": "cloudwatch", "operation": path.rsplit("/", 1)[1],
                "params": {"<cbor body>": f"{len(raw)} bytes"}}  # fmt: skip
    method = entry.get("method", "GET")
    operation = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject",
                 "DELETE": "DeleteObject", "POST": "PostObject"}.get(method, method)  # fmt: skip
    return {"service": "s3", "operation": operation, "params": {"Path": "/" + path}}


class Demo:
    def __init__(self, env: dict[str, str], recording: Recording):
        self.env = env
        self.recording = recording
        self.steps: list[tuple[str, bool]] = []

    def launcher(self, title: str, *argv: str) -> str:
        """One `python -m launcher` process: its output and the requests it sent."""
        shown = " ".join(shlex.quote(a) for a in argv)
        print(f"\n=== {title}\n$ python -m launcher {shown}", flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "launcher", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        for line in (result.stdout + result.stderr).splitlines():
            print(f"  | {line}")
        self.show_requests()
        ok = result.returncode == 0
        print(f"  {'ok' if ok else f'FAILED (exit {result.returncode})'} "
              f"({time.monotonic() - started:.1f} s)", flush=True)  # fmt: skip
        self.steps.append((title, ok))
        if not ok:
            raise SystemExit(f"launch demo: step {title!r} failed")
        return result.stdout

    def show_requests(self) -> None:
        requests = self.recording.new()
        writes = [r for r in requests if not r["operation"].startswith(READS)]
        reads = Counter(r["operation"] for r in requests if r["operation"].startswith(READS))
        print(f"  sent {len(writes)} write(s):")
        for r in writes:
            print(f"  -> {r['service']} {r['operation']}")
            for line in json.dumps(r["params"], indent=2, sort_keys=True).splitlines():
                print(f"       {line}")
        if reads:
            print("  and read: " + ", ".join(f"{op} x{n}" for op, n in sorted(reads.items())))


def prepare(endpoint_url: str, env: dict[str, str], work: Path) -> None:
    """The bucket, the sample data and a batch input, uploaded to moto."""
    import boto3

    data = work / "sample"
    subprocess.run([sys.executable, str(ROOT / "local_test" / "make_sample_data.py"), str(data)],
                   check=True, capture_output=True, env=env, timeout=120)  # fmt: skip
    s3 = boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="demo", aws_secret_access_key="demo",
    )  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    uploaded = 0
    for path in sorted((data / "input" / "data").rglob("*")):
        if path.is_file():
            key = "data/" + path.relative_to(data / "input" / "data").as_posix()
            s3.upload_file(str(path), BUCKET, key)
            uploaded += 1
    lines = [{"id": 1, "text": "my parcel never arrived"}, {"id": 2, "text": "refund please"}]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    s3.put_object(Bucket=BUCKET, Key="batch/in/tickets.jsonl", Body=body)
    print(f"bucket s3://{BUCKET}: the sample data ({uploaded} files under data/) and "
          "batch/in/tickets.jsonl uploaded")  # fmt: skip


def left_behind(endpoint_url: str) -> dict[str, list[str]]:
    import boto3

    where = dict(endpoint_url=endpoint_url, region_name=REGION,
                 aws_access_key_id="demo", aws_secret_access_key="demo")  # fmt: skip
    sm = boto3.client("sagemaker", **where)
    aas = boto3.client("application-autoscaling", **where)
    return {
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "endpoint configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "scalable targets": [t["ResourceId"] for t in aas.describe_scalable_targets(
            ServiceNamespace="sagemaker")["ScalableTargets"]],
    }  # fmt: skip


def walk(demo: Demo, endpoint_url: str) -> None:
    data = (
        "--train", f"s3://{BUCKET}/data/train/", "--validation", f"s3://{BUCKET}/data/validation/",
        "--instance-type", INSTANCE,
    )  # fmt: skip
    out = demo.launcher("train: a training job on the sample data",
                        "train", *data, "--hp", "epochs=2", "--base-job-name", "demo",
                        "--poll-seconds", "1")  # fmt: skip
    job = out.split("training job ", 1)[1].split()[0]
    demo.launcher("tune: a tuning job over the learning rate",
                  "tune", *data, "--range", "learning_rate=1e-5:1e-3:log",
                  "--objective", "val_f1", "--max-jobs", "4", "--max-parallel-jobs", "2",
                  "--name", TUNING_JOB, "--no-wait")  # fmt: skip
    demo.launcher("describe: the tuning job's trials (moto runs none)",
                  "describe", "--tuning-job", TUNING_JOB)  # fmt: skip
    demo.launcher("deploy: a real-time endpoint of the training job's model, autoscaled 1-2",
                  "deploy", "--training-job", job, "--name", ENDPOINT, "--instance-type",
                  INSTANCE, "--max-batch-size", "32", "--min-instances", "1",
                  "--max-instances", "2", "--target-invocations-per-instance", "600",
                  "--poll-seconds", "1")  # fmt: skip
    import requests

    requests.post(f"{endpoint_url}/moto-api/static/sagemaker/endpoint-results", timeout=10,
                  json={"results": [{"Body": json.dumps(CANNED),
                                     "ContentType": "application/json"}]})  # fmt: skip
    demo.launcher("invoke: one request to the endpoint",
                  "invoke", "--endpoint", ENDPOINT, "--data",
                  '{"inputs": "my parcel never arrived"}')  # fmt: skip
    demo.launcher("transform: a batch transform of a JSON Lines prefix, from the training job",
                  "transform", "--training-job", job, "--input", f"s3://{BUCKET}/batch/in/",
                  "--output", f"s3://{BUCKET}/batch/out/", "--name", TRANSFORM_JOB,
                  "--instance-type", INSTANCE, "--poll-seconds", "1")  # fmt: skip
    demo.launcher("delete: the endpoint with its autoscaling, config and model",
                  "delete", "--endpoint", ENDPOINT)  # fmt: skip
    demo.launcher("delete --model: the model the transform left",
                  "delete", "--model", TRANSFORM_JOB)  # fmt: skip
    left = left_behind(endpoint_url)
    print("\n=== left behind in moto: " + (
        "nothing (no model, endpoint config, endpoint or scalable target)"
        if not any(left.values()) else json.dumps(left)))  # fmt: skip
    demo.steps.append(("nothing left behind", not any(left.values())))


SUMMARY = """
=== what this run proves
Each step went through the launcher's real command line, as you would run it: its checks
(hyperparameters and serving settings with the container's own parsers, instance types,
names, limits), the SageMaker SDK v3 and boto3, and every request above reached an AWS
API (moto's) that took it and kept what later steps read back: deploy and transform found
the training job's model.tar.gz, invoke and delete found the endpoint, delete removed the
endpoint with its autoscaling, config and model, and nothing was left behind.

=== what it cannot show
No container ran. moto marks a job Completed and an endpoint InService at once; nothing
trained, nothing served: the model.tar.gz is a name, the tuning job ran no trials, and
invoke's answer is moto's canned one. moto also checks far less than SageMaker (lengths,
patterns, quotas, IAM permissions, whether the image exists in ECR) and answers a few
fields unlike it, which this demo patches in its moto process. For the container: `make
demo` trains and serves on this machine; for SageMaker itself, an AWS account (see
docs/launcher.md).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write every request sent, as JSON")
    parser.add_argument("--serve-moto", type=Path, help=argparse.SUPPRESS)  # the moto process
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return 0
    work = Path(tempfile.mkdtemp(prefix="launch-demo-"))
    print(f"temporary folder {work}")
    moto = None
    demo = None
    try:
        recording = work / "moto-requests.jsonl"
        moto_log = work / "moto.log"
        with moto_log.open("w") as log:
            moto = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve-moto", str(recording)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=work,
            )  # fmt: skip
        port = int(moto.stdout.readline().strip() or 0)
        if not port:
            raise SystemExit(f"launch demo: the moto server did not start:\n{moto_log.read_text()}")
        endpoint_url = f"http://127.0.0.1:{port}"
        print(f"moto server (process {moto.pid}) on {endpoint_url}")
        env = environment(endpoint_url, work)
        prepare(endpoint_url, env, work)
        demo = Demo(env, Recording(recording))
        demo.recording.new()  # the setup's own requests are not the launcher's
        demo.recording.requests.clear()
        walk(demo, endpoint_url)
        print(SUMMARY)
    finally:
        if demo is not None and args.record:
            args.record.write_text(json.dumps(demo.recording.requests, indent=1))
        if moto is not None:
            moto.stdin.close()  # moto stops when its stdin closes
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()
            print(f"moto server (process {moto.pid}) stopped")
        shutil.rmtree(work, ignore_errors=True)
        print(f"temporary folder {work} removed")
        if demo is not None:
            print("steps: " + ", ".join(f"{t.split(':')[0]} {'ok' if ok else 'FAILED'}"
                                        for t, ok in demo.steps))  # fmt: skip
    return 0 if demo is not None and all(ok for _, ok in demo.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
