"""The launcher against a real moto server on loopback: what did the AWS side receive?

One ThreadedMotoServer per module on 127.0.0.1; boto3 and the SageMaker SDK reach it
through AWS_ENDPOINT_URL with fake credentials. Each test reads back what moto stored
(describe_*), and where moto does not keep a field, the request body the SDK sent, taken
from botocore's before-send event on the session handed to the launcher.

Where moto falls short of SageMaker (each is worked around here, never in the launcher):
- DescribeModel/DescribeEndpointConfig/DescribeEndpoint answer an unset VpcConfig or
  DataCaptureConfig as `{}`; SageMaker leaves them out, and the SDK's resources reject
  the empty form. The fixture drops empty structures from those answers.
- DescribeEndpoint answers an endpoint's DataCaptureConfig as its endpoint config holds
  it; SageMaker answers a DataCaptureConfigSummary (CaptureStatus,
  CurrentSamplingPercentage), which the SDK requires. The fixture answers the summary.
- DescribeTrainingJob leaves out Environment, so it is checked on the request.
- CreateTrainingJob replaces AlgorithmSpecification.MetricDefinitions with a fixed
  `test:dcg` entry, so metric definitions are checked on the request.
- iam:SimulatePrincipalPolicy is not implemented, so the SDK's client-side role check is
  switched off with SAGEMAKER_VALIDATE_ROLE=false.
- Jobs are Completed and endpoints InService at once, so waits end on the first poll;
  waiting and timeouts on a running job are covered in tests/unit/test_launcher_waiting.py.
- CreateEndpointConfig accepts only an old list of instance types (no ml.g5), so the
  tests deploy on ml.g4dn.
- There are no inference components, Application Auto Scaling knows no copy-count
  dimension, and every endpoint config variant must name a model: the `components`
  fixture plays SageMaker's part there.
- CopyObject ignores If-None-Match, so add-model's condition is checked on the request.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import boto3
import botocore.loaders
import botocore.session
import pytest
import requests
from botocore.exceptions import ClientError

import launcher
from launcher import metrics
from launcher.cli import build_parser, main
from launcher.cli import train as train_cli
from sagemaker_platform import logs
from tests import helpers, outside_plugin

REGION = "us-east-1"
BUCKET = "launcher-test-data"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
TRAIN = f"s3://{BUCKET}/data/train/"
VALIDATION = f"s3://{BUCKET}/data/validation/"
PRETRAINED = f"s3://{BUCKET}/backbones/minilm/"
GPU_INSTANCE = "ml.g4dn.xlarge"  # moto's instance list has no ml.g5


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    from scripts.launch_demo import patch_describes

    home = tmp_path_factory.mktemp("aws")
    port = helpers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as mp:
        patch_describes(mp.setattr)
        for name in ("AWS_PROFILE", "AWS_REGION", "SAGEMAKER_ROLE_ARN", "IMAGE_URI", "no_proxy"):
            mp.delenv(name, raising=False)
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "SAGEMAKER_VALIDATE_ROLE": "false",
            # Anything but loopback goes to a closed port and fails at once (the SDK's
            # telemetry, say): the tests talk to moto and nothing else.
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        for key, value in env.items():
            mp.setenv(key, value)
        server.start()
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield f"http://127.0.0.1:{port}"
        server.stop()


@dataclass
class Call:
    service: str
    operation: str
    url: str
    headers: dict
    body: bytes


@dataclass
class Recorder:
    """A boto3 session whose every request is kept, as it goes on the wire."""

    session: boto3.Session
    calls: list[Call] = field(default_factory=list)

    def record(self, request, event_name, **_):
        _, service, operation = event_name.split(".", 2)
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.calls.append(Call(service, operation, request.url, headers, body))

    def sent(self, operation: str) -> list[dict]:
        return [json.loads(c.body) for c in self.calls if c.operation == operation]

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]


# One loader for all the sessions the tests make: botocore then parses its (large)
# SageMaker and endpoint JSON once, not once per session.
_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.Session:
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, region_name=REGION)


@pytest.fixture
def aws(moto) -> Recorder:
    recorder = Recorder(new_session())
    recorder.session.events.register("before-send", recorder.record)
    return recorder


@pytest.fixture(scope="module")
def sm(moto):
    return new_session().client("sagemaker")


def described(response: dict) -> dict:
    response.pop("ResponseMetadata", None)
    return response


def launch_training(aws: Recorder, **overrides):
    args = dict(
        train=TRAIN,
        validation=VALIDATION,
        pretrained=PRETRAINED,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        wait=False,
    )
    return launcher.train(**{**args, **overrides})


# --- training --------------------------------------------------------------------------
def test_training_job_gets_our_image_string_hyperparameters_channels_spot_and_tensorboard(aws, sm):
    job = launch_training(
        aws,
        hyperparameters={"epochs": 3, "learning_rate": 5e-5, "class_weighting": False},
        instance_type="ml.g5.2xlarge",
        instance_count=2,
        volume_size_gb=80,
        max_run_seconds=7200,
        spot=True,
        checkpoint_s3_uri=f"s3://{BUCKET}/checkpoints/run-1/",
        output_s3_uri=f"s3://{BUCKET}/models",
    )
    d = described(sm.describe_training_job(TrainingJobName=job.name))

    assert d["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert d["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert d["RoleArn"] == ROLE
    assert d["HyperParameters"] == {
        "class_weighting": "false",
        "epochs": "3",
        "learning_rate": "5e-05",
    }
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in d["InputDataConfig"]}
    assert {name: src["S3Uri"] for name, src in channels.items()} == {
        "train": TRAIN,
        "validation": VALIDATION,
        "pretrained": PRETRAINED,
    }
    assert {src["S3DataType"] for src in channels.values()} == {"S3Prefix"}
    assert d["ResourceConfig"] == {
        "InstanceType": "ml.g5.2xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 80,
    }
    assert d["EnableManagedSpotTraining"] is True
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert d["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/checkpoints/run-1/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert d["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/models"
    assert d["TensorBoardOutputConfig"] == {
        "S3OutputPath": f"s3://{BUCKET}/models/tensorboard",
        "LocalPath": "/opt/ml/output/tensorboard",
    }
    assert job.name.startswith("text-classifier-")
    # moto stores its own MetricDefinitions, so check what the SDK sent.
    (request,) = aws.sent("CreateTrainingJob")
    definitions = request["AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions == metrics.metric_definitions("text_classifier")
    assert request["HyperParameters"] == d["HyperParameters"]


def test_on_demand_training_defaults_output_next_to_the_data_without_spot(aws, sm):
    job = launch_training(aws, hyperparameters=None, validation=None, pretrained=None)
    d = described(sm.describe_training_job(TrainingJobName=job.name))
    assert d["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in d
    assert d["HyperParameters"] == {}
    assert [c["ChannelName"] for c in d["InputDataConfig"]] == ["train"]
    assert d["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/text-classifier"
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 24 * 3600}
    assert d["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"


def test_warm_pool_and_mlflow_reach_the_training_job(aws, sm):
    job = launch_training(
        aws,
        keep_alive_seconds=1800,
        mlflow_tracking_uri="http://10.0.0.8:5000",
        mlflow_experiment="support-tickets",
    )
    d = described(sm.describe_training_job(TrainingJobName=job.name))
    assert d["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
    (request,) = aws.sent("CreateTrainingJob")
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
    assert request["Environment"] == {
        "MLFLOW_TRACKING_URI": "http://10.0.0.8:5000",
        "MLFLOW_EXPERIMENT_NAME": "support-tickets",
    }


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"keep_alive_seconds": 3601}, "keep alive 3601 s: expected a whole number of seconds"),
        ({"keep_alive_seconds": -1}, "from 0 to 3600"),
        ({"mlflow_tracking_uri": "file:///tmp/mlruns"}, "MLflow tracking URI 'file:///tmp"),
        ({"mlflow_experiment": "x"}, "an MLflow experiment needs a tracking URI"),
    ],
)
def test_bad_warm_pool_or_mlflow_settings_are_refused_before_any_request(aws, overrides, expected):
    with pytest.raises(launcher.LauncherError, match=expected):
        launch_training(aws, **overrides)
    assert aws.calls == []


def test_cli_keep_alive_and_mlflow_flags(sm):
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/t"
    flags = ["--keep-alive-seconds", "600", "--mlflow-tracking-uri", arn]
    result = run_cli(
        "train", "--train", TRAIN, "--role", ROLE, "--image-uri", IMAGE, *flags, "--no-wait"
    )
    assert result.returncode == 0, result.stderr
    name = result.stdout.split("training job ", 1)[1].split()[0]
    d = described(sm.describe_training_job(TrainingJobName=name))
    assert d["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    # moto keeps no Environment: the flags' way into the request is checked on the plan.
    args = build_parser().parse_args(["train", "--train", TRAIN, *flags])
    plan = launcher.plan_training(
        **{**train_cli.training_arguments(args), "role": ROLE, "image_uri": IMAGE}
    )
    assert plan.environment == {"MLFLOW_TRACKING_URI": arn}
    assert plan.keep_alive_seconds == 600


def test_wait_streams_the_job_log_and_reports_status_metrics_and_model(aws, capsys):
    job = launch_training(aws)
    assert job.status == "Completed"  # moto finishes jobs at once
    # The lines training writes, in the job's CloudWatch stream as SageMaker names it.
    client = aws.session.client("logs")
    group, stream = "/aws/sagemaker/TrainingJobs", f"{job.name}/algo-1-1700000000"
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    lines = [
        logs.kv(epoch=1, train_loss=0.91, val_loss=0.8, val_f1=0.5, train_samples_per_sec=45.12),
        logs.kv(epoch=2, train_loss=0.41, val_loss=0.38, val_f1=0.83, train_samples_per_sec=46.0),
    ]
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )
    capsys.readouterr()

    info = launcher.wait_for_training(job.name, boto_session=aws.session, poll_seconds=0.01)

    out = capsys.readouterr().out
    assert f"training job {job.name}: Completed" in out
    for line in lines:
        assert f"[algo-1-1700000000] {line}" in out
    assert info.model_data == f"s3://{BUCKET}/text-classifier/{job.name}/output/model.tar.gz"
    assert f"model: {info.model_data}" in out
    assert "final metrics" in out  # moto reports its own train:progress metric
    # A zero timeout still reports a job that has finished: status comes before the clock.
    assert launcher.wait_for_training(job.name, boto_session=aws.session, timeout_seconds=0)


def test_train_waits_by_default_and_returns_the_completed_job(aws):
    info = launch_training(aws, wait=True, poll_seconds=0.01, logs=False)
    assert info.status == "Completed"
    assert info.model_data.endswith(f"/{info.name}/output/model.tar.gz")


def test_sharded_fast_file_channels_reach_create_training_job(aws, sm):
    job = launch_training(
        aws, instance_count=2, distribution={"train": "sharded"}, input_mode="FastFile"
    )
    d = described(sm.describe_training_job(TrainingJobName=job.name))
    channels = {c["ChannelName"]: c for c in d["InputDataConfig"]}
    distribution = {
        name: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for name, c in channels.items()
    }
    assert distribution == {
        "train": "ShardedByS3Key",
        "validation": "FullyReplicated",
        "pretrained": "FullyReplicated",
    }
    (request,) = aws.sent("CreateTrainingJob")
    assert {c["ChannelName"]: c["InputMode"] for c in request["InputDataConfig"]} == {
        "train": "FastFile",
        "validation": "FastFile",
        "pretrained": "FastFile",
    }
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"


def test_missing_role_is_refused_before_any_request(aws, sm, monkeypatch):
    before = len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    with pytest.raises(launcher.LauncherError, match="no IAM role"):
        launch_training(aws, role=None)
    with pytest.raises(launcher.LauncherError, match="no image URI"):
        launch_training(aws, image_uri=None)
    with pytest.raises(launcher.LauncherError, match="epochs='0' is out of range"):
        launch_training(aws, hyperparameters={"epochs": 0})
    assert aws.calls == []
    assert len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == before


# --- the CLI as users run it ---------------------------------------------------------------
def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        cwd=str(helpers.ROOT),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_train_no_wait_creates_the_job_and_returns(sm):
    result = run_cli(
        "train",
        "--train", TRAIN,
        "--hp", "epochs=2",
        "--hp", "pooling=cls",
        "--role", ROLE,
        "--image-uri", IMAGE,
        "--spot",
        "--checkpoint-s3-uri", f"s3://{BUCKET}/checkpoints/cli/",
        "--base-job-name", "cli-run",
        "--no-wait",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    name = result.stdout.split("training job ", 1)[1].split()[0]
    d = described(sm.describe_training_job(TrainingJobName=name))
    assert name.startswith("cli-run-")
    assert d["HyperParameters"] == {"epochs": "2", "pooling": "cls"}
    assert d["EnableManagedSpotTraining"] is True
    assert d["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert "Completed" not in result.stdout  # --no-wait: no status polling


def test_cli_sharded_validation_channel(sm):
    result = run_cli(
        "train",
        "--train", TRAIN,
        "--validation", VALIDATION,
        "--distribution", "sharded",
        "--distribution", "validation=sharded",
        "--instance-count", "2",
        "--role", ROLE,
        "--image-uri", IMAGE,
        "--no-wait",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    name = result.stdout.split("training job ", 1)[1].split()[0]
    d = described(sm.describe_training_job(TrainingJobName=name))
    assert {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in d["InputDataConfig"]
    } == {"train": "ShardedByS3Key", "validation": "ShardedByS3Key"}


def test_cli_refuses_a_launch_without_role_or_region_before_any_request(sm):
    before = len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])
    result = run_cli(
        "train", "--train", TRAIN, "--image-uri", IMAGE, env={"AWS_DEFAULT_REGION": ""}
    )
    assert result.returncode == 2
    assert "no AWS region" in result.stderr and "no IAM role" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]) == before


# --- hosting -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(moto) -> str:
    """A (moto: at once Completed) training job with a model.tar.gz to deploy."""
    return launcher.train(
        train=TRAIN, role=ROLE, image_uri=IMAGE, boto_session=new_session(), wait=False
    ).name


def deployed(trained: str, name: str, **overrides) -> str:
    args = dict(
        training_job=trained,
        name=name,
        instance_type=GPU_INSTANCE,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=new_session(),
        wait=False,
    )
    return launcher.deploy(**{**args, **overrides}).endpoint_name


@pytest.fixture(scope="module")
def endpoint(trained) -> str:
    return deployed(trained, "shared-endpoint")


def test_deploy_realtime_creates_model_config_and_endpoint(aws, sm, trained):
    dep = launcher.deploy(
        training_job=trained,
        name="rt-endpoint",
        instance_type=GPU_INSTANCE,
        instance_count=2,
        serving={"workers": 1, "max_batch_size": 64, "max_batch_delay_ms": 5, "precision": "bf16"},
        env={"LOG_LEVEL": "DEBUG"},
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    assert dep.status == "InService"
    model = described(sm.describe_model(ModelName="rt-endpoint"))
    job = sm.describe_training_job(TrainingJobName=trained)
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model["PrimaryContainer"]["Environment"] == {
        "LOG_LEVEL": "DEBUG",
        "MODEL_SERVER_MAX_BATCH_DELAY_MS": "5",
        "MODEL_SERVER_MAX_BATCH_SIZE": "64",
        "MODEL_SERVER_MODE": "realtime",
        "MODEL_SERVER_PRECISION": "bf16",
        "MODEL_SERVER_WORKERS": "1",
    }
    assert model["ExecutionRoleArn"] == ROLE
    config = described(sm.describe_endpoint_config(EndpointConfigName="rt-endpoint"))
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "rt-endpoint",
            "InitialInstanceCount": 2,
            "InstanceType": GPU_INSTANCE,
        }
    ]
    assert "AsyncInferenceConfig" not in config
    endpoint = described(sm.describe_endpoint(EndpointName="rt-endpoint"))
    assert endpoint["EndpointConfigName"] == "rt-endpoint"
    assert endpoint["EndpointStatus"] == "InService"


def test_deploy_async_sets_the_output_paths(aws, sm, trained):
    launcher.deploy(
        training_job=trained,
        name="async-endpoint",
        mode="async",
        instance_type=GPU_INSTANCE,
        async_output_s3_uri=f"s3://{BUCKET}/async/out/",
        async_failure_s3_uri=f"s3://{BUCKET}/async/failed/",
        async_max_concurrent_invocations=4,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        wait=False,
    )
    config = sm.describe_endpoint_config(EndpointConfigName="async-endpoint")
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": f"s3://{BUCKET}/async/out/",
            "S3FailurePath": f"s3://{BUCKET}/async/failed/",
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    assert config["ProductionVariants"][0]["InstanceType"] == GPU_INSTANCE
    assert sm.describe_endpoint(EndpointName="async-endpoint")["EndpointStatus"] == "InService"


def test_deploy_serverless_sends_memory_and_concurrency_through_boto3(aws, sm, trained):
    launcher.deploy(
        training_job=trained,
        name="serverless-endpoint",
        mode="serverless",
        serverless_memory_mb=4096,
        serverless_max_concurrency=10,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        wait=False,
    )
    config = sm.describe_endpoint_config(EndpointConfigName="serverless-endpoint")
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": "serverless-endpoint",
            "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 10},
        }
    ]


def test_deploy_from_an_unknown_training_job_creates_nothing(aws):
    with pytest.raises(ClientError, match="never-ran"):
        launcher.deploy(
            training_job="never-ran", role=ROLE, image_uri=IMAGE, boto_session=aws.session
        )
    assert aws.operations() == ["DescribeTrainingJob"]


def test_invoke_sends_the_payload_and_content_type(aws, moto, endpoint):
    requests.post(
        f"{moto}/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": '{"label": "billing"}', "ContentType": "application/json"}]},
        timeout=10,
    )
    response = launcher.invoke(
        endpoint, "text\nmy card was charged twice\n", content_type="text/csv",
        accept="application/json", boto_session=aws.session,
    )  # fmt: skip
    assert response.json() == {"label": "billing"}
    assert response.content_type == "application/json"
    (call,) = aws.calls
    assert (call.service, call.operation) == ("sagemaker-runtime", "InvokeEndpoint")
    assert call.url.endswith(f"/endpoints/{endpoint}/invocations")
    assert call.body == b"text\nmy card was charged twice\n"
    assert call.headers["Content-Type"] == "text/csv"
    assert call.headers["Accept"] == "application/json"
    assert "X-Amzn-SageMaker-Custom-Attributes" not in call.headers


def test_invoke_passes_custom_attributes_for_the_model(aws, moto, endpoint):
    requests.post(
        f"{moto}/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": "{}", "ContentType": "application/json"}]},
        timeout=10,
    )
    launcher.invoke(endpoint, "parcel lost", custom_attributes="top_k=3", boto_session=aws.session)
    (call,) = [c for c in aws.calls if c.operation == "InvokeEndpoint"]
    assert call.headers["X-Amzn-SageMaker-Custom-Attributes"] == "top_k=3"
    args = build_parser().parse_args(
        ["invoke", "--endpoint", endpoint, "--data", "x", "--custom-attributes", "top_k=3"]
    )
    assert args.custom_attributes == "top_k=3"


def test_invoke_async_uploads_the_payload_and_reads_the_response(aws, trained):
    name = deployed(trained, "async-invoked", mode="async", async_output_s3_uri=f"s3://{BUCKET}/o/")
    response = launcher.invoke_async(
        name,
        {"text": "where is my parcel"},
        input_s3_uri=f"s3://{BUCKET}/async/in/",
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    assert response.json() == {"default": "response"}  # moto's canned async answer
    (sent,) = [c.headers for c in aws.calls if c.operation == "InvokeEndpointAsync"]
    key = sent["X-Amzn-SageMaker-InputLocation"].split(f"s3://{BUCKET}/", 1)[1]
    assert key.startswith("async/in/") and key.endswith(".json")
    uploaded = aws.session.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert json.loads(uploaded["Body"].read()) == {"text": "where is my parcel"}
    assert sent["X-Amzn-SageMaker-Content-Type"] == "application/json"


def test_cli_invoke_prints_the_response(moto, endpoint, tmp_path, capsys):
    requests.post(
        f"{moto}/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": '[{"label": "shipping"}]', "ContentType": "application/json"}]},
        timeout=10,
    )
    payload = tmp_path / "texts.jsonl"
    payload.write_text('{"text": "parcel lost"}\n')
    assert main(["invoke", "--endpoint", endpoint, "--file", str(payload)]) == 0
    assert json.loads(capsys.readouterr().out) == [{"label": "shipping"}]


# --- batch transform -----------------------------------------------------------------------
def test_transform_sets_split_batching_and_the_execution_parameter_limits(aws, sm, endpoint):
    info = launcher.transform(
        model_name=endpoint,
        input_s3_uri=f"s3://{BUCKET}/batch/in/",
        output_s3_uri=f"s3://{BUCKET}/batch/out/",
        content_type="application/jsonlines",
        name="batch-1",
        instance_type="ml.g4dn.12xlarge",
        instance_count=2,
        serving={"max_batch_size": 128},
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    assert info.status == "Completed"
    d = described(sm.describe_transform_job(TransformJobName="batch-1"))
    assert d["ModelName"] == endpoint
    assert d["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/in/"}
        },
        "ContentType": "application/jsonlines",
        "SplitType": "Line",
    }
    assert d["TransformOutput"] == {
        "S3OutputPath": f"s3://{BUCKET}/batch/out/",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    assert d["TransformResources"] == {"InstanceType": "ml.g4dn.12xlarge", "InstanceCount": 2}
    # ml.g4dn.12xlarge has 4 GPUs: the server runs 4 workers, one request each.
    assert (d["MaxConcurrentTransforms"], d["BatchStrategy"], d["MaxPayloadInMB"]) == (
        4,
        "MultiRecord",
        6,
    )
    assert d["Environment"] == {"MODEL_SERVER_MAX_BATCH_SIZE": "128"}
    assert aws.sent("CreateModel") == []  # it used the existing model


def test_cli_transform_from_a_training_job_creates_the_model_first(sm, trained, capsys):
    code = main(
        [
            "transform",
            "--training-job", trained,
            "--input", f"s3://{BUCKET}/batch/csv/",
            "--output", f"s3://{BUCKET}/batch/csv-out/",
            "--content-type", "text/csv",
            "--name", "batch-csv",
            "--instance-type", "ml.m5.xlarge",
            "--workers", "2",
            "--max-payload-mb", "20",
            "--role", ROLE,
            "--image-uri", IMAGE,
            "--no-wait",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    d = described(sm.describe_transform_job(TransformJobName="batch-csv"))
    assert d["ModelName"] == "batch-csv"
    assert sm.describe_model(ModelName="batch-csv")["PrimaryContainer"]["Image"] == IMAGE
    assert d["TransformInput"]["ContentType"] == "text/csv"
    assert d["TransformOutput"]["Accept"] == "text/csv"
    assert (d["MaxConcurrentTransforms"], d["MaxPayloadInMB"]) == (2, 20)  # two workers
    assert d["Environment"] == {"MODEL_SERVER_WORKERS": "2"}


# --- delete --------------------------------------------------------------------------------
def test_delete_removes_endpoint_config_and_model(aws, sm, trained):
    name = deployed(trained, "to-delete")
    deleted = launcher.delete(name, boto_session=aws.session)
    assert deleted == [f"endpoint {name}", f"endpoint config {name}", f"model {name}"]
    for call, kwargs in (
        (sm.describe_endpoint, {"EndpointName": name}),
        (sm.describe_endpoint_config, {"EndpointConfigName": name}),
        (sm.describe_model, {"ModelName": name}),
    ):
        with pytest.raises(ClientError):
            call(**kwargs)


def test_cli_delete_can_keep_the_model(sm, trained, capsys):
    name = deployed(trained, "to-delete-keep-model", mode="serverless")
    assert main(["delete", "--endpoint", name, "--keep-model"]) == 0
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName=name)
    assert sm.describe_model(ModelName=name)["ModelName"] == name
    assert f"deleted endpoint config {name}" in capsys.readouterr().out


# --- autoscaling -----------------------------------------------------------------------------
def scaling_of(name: str) -> tuple[list[dict], list[dict]]:
    """The scalable targets and scaling policies moto holds for an endpoint's variant."""
    aas = new_session().client("application-autoscaling")
    resource = f"endpoint/{name}/variant/AllTraffic"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    policies = [p for p in policies["ScalingPolicies"] if p["ResourceId"] == resource]
    return targets["ScalableTargets"], sorted(policies, key=lambda p: p["PolicyName"])


def alarms_named(*names: str) -> list[dict]:
    cloudwatch = new_session().client("cloudwatch")
    return cloudwatch.describe_alarms(AlarmNames=list(names))["MetricAlarms"]


def test_deploy_realtime_with_autoscaling_tracks_invocations_per_instance(aws, sm, trained):
    launcher.deploy(
        training_job=trained,
        name="scaled-rt",
        instance_type=GPU_INSTANCE,
        instance_count=2,
        min_instances=1,
        max_instances=4,
        target_invocations_per_instance=3000,
        scale_in_cooldown=600,
        scale_out_cooldown=60,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    (target,), (policy,) = scaling_of("scaled-rt")
    assert (target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        "sagemaker:variant:DesiredInstanceCount",
        1,
        4,
    )
    assert (policy["PolicyName"], policy["PolicyType"]) == (
        "invocations-per-instance",
        "TargetTrackingScaling",
    )
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 3000.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "ScaleInCooldown": 600,
        "ScaleOutCooldown": 60,
    }
    # Registered after the endpoint was seen InService, never before.
    operations = aws.operations()
    assert operations.index("RegisterScalableTarget") > operations.index("DescribeEndpoint")
    assert sm.describe_endpoint(EndpointName="scaled-rt")["EndpointStatus"] == "InService"


def test_async_endpoint_scales_to_zero_on_its_backlog_and_wakes_on_an_alarm(aws, trained):
    launcher.deploy(
        training_job=trained,
        name="scaled-async",
        mode="async",
        instance_type=GPU_INSTANCE,
        async_output_s3_uri=f"s3://{BUCKET}/async/out/",
        min_instances=0,
        max_instances=3,
        target_backlog_per_instance=5,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    (target,), (backlog, wake) = scaling_of("scaled-async")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    assert backlog["PolicyName"] == "backlog-per-instance"
    assert backlog["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 5.0,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": "scaled-async"}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 300,
    }
    assert (wake["PolicyName"], wake["PolicyType"]) == ("wake-from-zero", "StepScaling")
    assert wake["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    }
    (alarm,) = alarms_named("scaled-async-HasBacklogWithoutCapacity")
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SageMaker",
        "HasBacklogWithoutCapacity",
    )
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "scaled-async"}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1.0,
    )
    assert alarm["AlarmActions"] == [wake["PolicyARN"]]  # the alarm fires the step policy


def test_async_autoscaling_above_zero_has_no_wake_policy(aws, trained):
    launcher.deploy(
        training_job=trained,
        name="scaled-async-warm",
        mode="async",
        instance_type=GPU_INSTANCE,
        async_output_s3_uri=f"s3://{BUCKET}/async/out/",
        min_instances=1,
        max_instances=2,
        target_backlog_per_instance=2.5,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        poll_seconds=0.01,
    )
    _, policies = scaling_of("scaled-async-warm")
    assert [p["PolicyName"] for p in policies] == ["backlog-per-instance"]
    assert alarms_named("scaled-async-warm-HasBacklogWithoutCapacity") == []


def test_delete_deregisters_autoscaling_its_policies_and_the_wake_alarm(aws, sm, trained):
    name = deployed(
        trained,
        "scaled-then-deleted",
        mode="async",
        async_output_s3_uri=f"s3://{BUCKET}/o/",
        min_instances=0,
        max_instances=2,
        target_backlog_per_instance=5,
        wait=True,
        poll_seconds=0.01,
    )
    assert scaling_of(name) != ([], [])
    deleted = launcher.delete(name, boto_session=aws.session)
    assert deleted == [
        "scaling policy backlog-per-instance",
        "scaling policy wake-from-zero",
        f"scalable target endpoint/{name}/variant/AllTraffic",
        f"alarm {name}-HasBacklogWithoutCapacity",
        f"endpoint {name}",
        f"endpoint config {name}",
        f"model {name}",
    ]
    assert scaling_of(name) == ([], [])
    assert alarms_named(f"{name}-HasBacklogWithoutCapacity") == []
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName=name)


def test_deploy_no_wait_refuses_autoscaling_then_autoscale_registers_it(sm, trained, capsys):
    base = ["deploy", "--training-job", trained, "--name", "scaled-later", "--role", ROLE,
            "--image-uri", IMAGE, "--instance-type", GPU_INSTANCE, "--no-wait"]  # fmt: skip
    scaling = ["--min-instances", "1", "--max-instances", "3",
               "--target-invocations-per-instance", "1200"]  # fmt: skip
    assert main([*base, *scaling]) == 2
    assert "drop --no-wait" in capsys.readouterr().err
    with pytest.raises(ClientError):  # refused before anything was created
        sm.describe_model(ModelName="scaled-later")

    assert main(base) == 0
    assert scaling_of("scaled-later") == ([], [])
    code = main(["autoscale", "--endpoint", "scaled-later", "--poll-seconds", "0.01", *scaling])
    assert code == 0, capsys.readouterr().err
    (target,), (policy,) = scaling_of("scaled-later")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 1200.0

    # Again, with other figures: the autoscaling is replaced, not stacked.
    scaling[1], scaling[5] = "2", "900"
    assert (
        main(["autoscale", "--endpoint", "scaled-later", "--poll-seconds", "0.01", *scaling]) == 0
    )
    (target,), (policy,) = scaling_of("scaled-later")
    assert target["MinCapacity"] == 2
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 900.0
    out = capsys.readouterr().out
    assert "replaced scaling policy invocations-per-instance" in out
    assert "min_instances=2 max_instances=3" in out


def test_autoscale_reads_the_mode_of_the_endpoint(trained, capsys):
    name = deployed(trained, "serverless-no-scaling", mode="serverless")
    code = main(["autoscale", "--endpoint", name, "--min-instances", "1", "--max-instances",
                 "2", "--target-invocations-per-instance", "100"])  # fmt: skip
    assert code == 2
    assert "serverless endpoint scales by itself" in capsys.readouterr().err
    assert scaling_of(name) == ([], [])


# --- the mode variable and data capture ------------------------------------------------------
@pytest.mark.parametrize("mode", ["realtime", "async", "serverless"])
def test_deploy_tells_the_container_its_mode(sm, trained, mode):
    extra = {"async_output_s3_uri": f"s3://{BUCKET}/o/"} if mode == "async" else {}
    name = deployed(trained, f"mode-{mode}", mode=mode, **extra)
    environment = sm.describe_model(ModelName=name)["PrimaryContainer"]["Environment"]
    assert environment["MODEL_SERVER_MODE"] == mode


def test_deploy_with_data_capture_sets_the_endpoint_config(aws, sm, trained):
    launcher.deploy(
        training_job=trained,
        name="captured",
        instance_type=GPU_INSTANCE,
        capture_s3_uri=f"s3://{BUCKET}/capture/",
        capture_percent=25,
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        wait=False,
    )
    config = sm.describe_endpoint_config(EndpointConfigName="captured")
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": f"s3://{BUCKET}/capture/",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonlines"],
        },
    }


def test_cli_data_capture_on_async_with_chosen_content_types(sm, trained, capsys):
    code = main(
        [
            "deploy", "--training-job", trained, "--name", "captured-async", "--mode", "async",
            "--async-output-s3-uri", f"s3://{BUCKET}/o/", "--instance-type", GPU_INSTANCE,
            "--capture-s3-uri", f"s3://{BUCKET}/capture/", "--capture-content-types",
            "application/x-jsonlines", "--role", ROLE, "--image-uri", IMAGE, "--no-wait",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capture = sm.describe_endpoint_config(EndpointConfigName="captured-async")["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/x-jsonlines"]}


def test_deploy_without_data_capture_leaves_it_out(sm, endpoint):
    assert "DataCaptureConfig" not in sm.describe_endpoint_config(EndpointConfigName=endpoint)


# --- batch transform joins -------------------------------------------------------------------
def test_cli_transform_keeps_the_id_column_next_to_each_answer(aws, sm, endpoint, capsys):
    code = main(
        [
            "transform", "--model-name", endpoint, "--name", "batch-joined",
            "--input", f"s3://{BUCKET}/batch/ids/", "--output", f"s3://{BUCKET}/batch/joined/",
            "--content-type", "text/csv", "--instance-type", "ml.m5.xlarge",
            "--input-filter", "$[1:]", "--join-source", "input", "--output-filter", "$[0,-1]",
            "--no-wait",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    d = described(sm.describe_transform_job(TransformJobName="batch-joined"))
    assert d["DataProcessing"] == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$[0,-1]",
    }
    assert (d["TransformInput"]["SplitType"], d["TransformOutput"]["AssembleWith"]) == (
        "Line",
        "Line",
    )
    assert "join source Input, output filter $[0,-1]" in capsys.readouterr().out


def test_transform_without_joins_sends_no_data_processing(aws, endpoint):
    launcher.transform(
        model_name=endpoint,
        input_s3_uri=f"s3://{BUCKET}/batch/in/",
        output_s3_uri=f"s3://{BUCKET}/batch/plain/",
        name="batch-plain",
        instance_type="ml.m5.xlarge",
        boto_session=aws.session,
        wait=False,
    )
    (request,) = aws.sent("CreateTransformJob")
    assert "DataProcessing" not in request


# --- tuning --------------------------------------------------------------------------------
# moto 5.2.5 stores a tuning job and answers Describe/List for it, but runs no trials: its
# BestTrainingJob is a fixed placeholder and ListTrainingJobsForHyperParameterTuningJob is
# not implemented. `ran_trials` plays SageMaker's part: it starts the trials as training
# jobs and records them (with their objective) where moto's answers come from.
def ran_trials(
    monkeypatch, name: str, trials: dict[str, tuple[dict, float]], stopped: tuple[str, ...] = ()
) -> None:
    from moto.backends import get_backend
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    backend = get_backend("sagemaker")["123456789012"][REGION]
    tuning_job = backend.hyper_parameter_tuning_jobs[name]
    objective = tuning_job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
    summaries = []
    for trial, (tuned, value) in trials.items():
        job = launcher.train(
            train=TRAIN, role=ROLE, image_uri=IMAGE, base_job_name=trial,
            hyperparameters=tuned, boto_session=new_session(), wait=False,
        )  # fmt: skip
        summaries.append(
            {
                "TrainingJobName": job.name,
                "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{job.name}",
                "TuningJobName": name,
                "CreationTime": time.time(),
                "TrainingJobStatus": "Stopped" if trial in stopped else "Completed",
                "TunedHyperParameters": {k: str(v) for k, v in tuned.items()},
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "Type": objective["Type"], "MetricName": objective["MetricName"],
                    "Value": value,
                },
                "ObjectiveStatus": "Succeeded",
            }
        )  # fmt: skip
    better = max if objective["Type"] == "Maximize" else min
    tuning_job.best_training_job = better(
        summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    )
    tuning_job.training_job_status_counters["Completed"] = len(summaries) - len(stopped)
    tuning_job.training_job_status_counters["Stopped"] = len(stopped)

    def list_trials(self):
        assert self._get_param("HyperParameterTuningJobName") == name
        return ActionResult({"TrainingJobSummaries": summaries})

    monkeypatch.setattr(
        SageMakerResponse,
        "list_training_jobs_for_hyper_parameter_tuning_job",
        list_trials,
        raising=False,
    )


def test_tune_sends_ranges_objective_strategy_and_the_training_definition(aws, sm):
    info = launcher.tune(
        train=TRAIN,
        validation=VALIDATION,
        hyperparameters={"epochs": 4, "model": "text_classifier"},
        ranges={"learning_rate": "1e-5:1e-3:log", "batch_size": [16, 32], "max_length": "64:256"},
        objective="val_f1",
        strategy="Random",
        max_jobs=6,
        max_parallel_jobs=3,
        early_stopping="Auto",
        spot=True,
        checkpoint_s3_uri=f"s3://{BUCKET}/checkpoints/tune-1/",
        mlflow_tracking_uri="https://mlflow.example.com",
        name="tune-request",
        role=ROLE,
        image_uri=IMAGE,
        boto_session=aws.session,
        wait=False,
    )
    assert (info.name, info.objective, info.direction) == ("tune-request", "val_f1", "Maximize")
    d = described(
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-request")
    )
    config = d["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "val_f1",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [
            {"Name": "max_length", "MinValue": "64", "MaxValue": "256", "ScalingType": "Auto"}
        ],
        "ContinuousParameterRanges": [
            {"Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.001",
             "ScalingType": "Logarithmic"}
        ],
        "CategoricalParameterRanges": [{"Name": "batch_size", "Values": ["16", "32"]}],
    }  # fmt: skip
    definition = d["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {"epochs": "4", "model": "text_classifier"}
    spec = definition["AlgorithmSpecification"]
    assert spec["TrainingImage"] == IMAGE and spec["TrainingInputMode"] == "File"
    assert spec["MetricDefinitions"] == metrics.metric_definitions("text_classifier")
    assert definition["RoleArn"] == ROLE
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train", "validation"]
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/checkpoints/tune-1/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert definition["Environment"] == {"MLFLOW_TRACKING_URI": "https://mlflow.example.com"}
    assert definition["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2 * 24 * 3600


def test_bad_ranges_send_nothing(aws):
    with pytest.raises(launcher.LauncherError, match="range 'learnig_rate': no such"):
        launcher.tune(
            train=TRAIN, ranges={"learnig_rate": "1e-5:1e-3"}, objective="val_f1",
            role=ROLE, image_uri=IMAGE, boto_session=aws.session,
        )  # fmt: skip
    assert aws.calls == []


def test_cli_tune_wait_describe_and_deploy_the_best_trial(sm, capsys, monkeypatch):
    code = main(
        [
            "tune", "--train", TRAIN, "--role", ROLE, "--image-uri", IMAGE,
            "--hp", "epochs=3",
            "--range", "learning_rate=1e-5:1e-3:log", "--range", "pooling=mean,cls",
            "--objective", "val_loss", "--strategy", "Hyperband",
            "--max-jobs", "4", "--max-parallel-jobs", "2",
            "--warm-start-from", "tune-earlier", "--warm-start-type", "TransferLearning",
            "--name", "tune-cli", "--no-wait",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "tuning job tune-cli created" in capsys.readouterr().out
    d = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-cli")
    config = d["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize", "MetricName": "val_loss"
    }  # fmt: skip
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 3}
    }
    assert d["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "tune-earlier"}],
        "WarmStartType": "TransferLearning",
    }

    ran_trials(monkeypatch, "tune-cli", {
        "trial-a": ({"learning_rate": 1e-4, "pooling": "mean"}, 0.42),
        "trial-b": ({"learning_rate": 3e-4, "pooling": "cls"}, 0.31),
    })  # fmt: skip
    assert main(["wait", "--tuning-job", "tune-cli", "--poll-seconds", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "tuning job tune-cli: Completed - trials: Completed 2; best trial-b-" in out
    (a,) = [line for line in out.splitlines() if line.startswith("trial trial-a-")]
    assert a.endswith("Completed val_loss=0.42 learning_rate=0.0001 pooling=mean")
    (best,) = [line for line in out.splitlines() if line.startswith("best ")]
    assert best.startswith("best trial-b-") and "val_loss=0.31 (Minimize)" in best

    assert main(["describe", "--tuning-job", "tune-cli"]) == 0
    out = capsys.readouterr().out
    assert "tuning job tune-cli: Completed (Minimize val_loss; trials: Completed 2)" in out
    assert sum(line.startswith("trial ") for line in out.splitlines()) == 2

    info = launcher.describe_tuning("tune-cli", boto_session=new_session())
    best_job = info.best.name
    code = main(
        [
            "deploy", "--tuning-job", "tune-cli", "--name", "tuned-endpoint",
            "--instance-type", GPU_INSTANCE, "--role", ROLE, "--image-uri", IMAGE, "--no-wait",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert f"best trial of tuning job tune-cli: {best_job} val_loss=0.31" in capsys.readouterr().out
    model = sm.describe_model(ModelName="tuned-endpoint")
    artifacts = sm.describe_training_job(TrainingJobName=best_job)["ModelArtifacts"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifacts["S3ModelArtifacts"]


def test_deploy_from_a_tuning_job_without_a_best_trial_creates_nothing(aws, sm):
    launcher.tune(
        train=TRAIN, ranges={"pooling": "mean,cls"}, objective="val_f1", name="tune-empty",
        role=ROLE, image_uri=IMAGE, boto_session=new_session(), wait=False,
    )  # fmt: skip
    from moto.backends import get_backend

    get_backend("sagemaker")["123456789012"][REGION].hyper_parameter_tuning_jobs[
        "tune-empty"
    ].best_training_job = None  # as SageMaker answers before a trial completes
    with pytest.raises(launcher.LauncherError, match="tune-empty .* has no completed best"):
        launcher.deploy(
            tuning_job="tune-empty", role=ROLE, image_uri=IMAGE, boto_session=aws.session
        )
    assert aws.operations() == ["DescribeHyperParameterTuningJob"]


def test_deploy_takes_the_best_completed_trial_when_the_best_was_stopped_early(
    aws, sm, monkeypatch, capsys
):
    launcher.tune(
        train=TRAIN, ranges={"dropout": "0:0.5"}, objective="val_f1", name="tune-stopped",
        early_stopping="Auto", role=ROLE, image_uri=IMAGE, boto_session=new_session(),
        wait=False,
    )  # fmt: skip
    ran_trials(monkeypatch, "tune-stopped", {
        "early": ({"dropout": 0.1}, 0.9),  # stopped early: no model.tar.gz
        "second": ({"dropout": 0.2}, 0.8),
        "third": ({"dropout": 0.3}, 0.7),
    }, stopped=("early",))  # fmt: skip
    capsys.readouterr()
    launcher.deploy(
        tuning_job="tune-stopped", name="tuned-after-stop", instance_type=GPU_INSTANCE,
        role=ROLE, image_uri=IMAGE, boto_session=aws.session, wait=False,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "is Stopped and left no model; taking the best completed one" in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("best trial of tuning job")][-1:]
    second = line.split(": ", 1)[1].split()[0]
    assert second.startswith("second-") and line.endswith("val_f1=0.8")
    model = sm.describe_model(ModelName="tuned-after-stop")
    artifacts = sm.describe_training_job(TrainingJobName=second)["ModelArtifacts"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifacts["S3ModelArtifacts"]


# --- binary payloads, dry runs, plug-ins outside the repository ---------------------------------
def canned_answer(moto: str, body: str, content_type: str = "application/json") -> None:
    requests.post(
        f"{moto}/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": body, "ContentType": content_type}]},
        timeout=10,
    )


@pytest.fixture
def runtime(moto, monkeypatch):
    """sagemaker-runtime on a loopback HTTP server (AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME):
    moto's own decodes every request body as UTF-8, so it cannot take an image. Keeps
    each request (path, headers, body) and answers with `answer` (body, content type)."""
    import http.server
    import threading

    class Runtime:
        def __init__(self):
            self.requests: list[tuple[str, dict, bytes]] = []
            self.answer = (b"{}", "application/json")

    runtime = Runtime()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            runtime.requests.append((self.path, dict(self.headers), body))
            payload, kind = runtime.answer
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{server.server_address[1]}"
    )
    yield runtime
    server.shutdown()
    server.server_close()


def test_cli_invoke_sends_a_png_file_and_writes_a_binary_answer(runtime, tmp_path, capsysbinary):
    image = tmp_path / "cat.png"
    image.write_bytes(outside_plugin.PNG)
    mask = outside_plugin.PNG[::-1]  # an answer that is no text either
    runtime.answer = (mask, "image/png")
    answer = tmp_path / "mask.png"
    argv = ["invoke", "--endpoint", "png-endpoint", "--file", str(image)]
    assert main([*argv, "--output", str(answer)]) == 0
    ((path, headers, body),) = runtime.requests
    assert path == "/endpoints/png-endpoint/invocations"
    assert body == outside_plugin.PNG  # byte for byte, never decoded
    assert headers["Content-Type"] == "image/png"
    assert answer.read_bytes() == mask
    capsysbinary.readouterr()
    assert main(argv) == 0  # stdout is no terminal here: the bytes go there, as they are
    assert capsysbinary.readouterr().out == mask


def test_cli_invoke_checks_the_type_against_the_plugin_before_sending(runtime, tmp_path, capsys):
    image = tmp_path / "cat.png"
    image.write_bytes(outside_plugin.PNG)
    argv = ["invoke", "--endpoint", "e", "--file", str(image), "--model", "text_classifier"]
    assert main(argv) == 2
    assert "plug-in text_classifier reads" in capsys.readouterr().err
    assert runtime.requests == []


def test_invoke_async_uploads_a_png_byte_for_byte(aws, trained):
    name = deployed(trained, "async-png", mode="async", async_output_s3_uri=f"s3://{BUCKET}/o/")
    output = launcher.invoke_async(
        name,
        outside_plugin.PNG,
        content_type="image/png",
        input_s3_uri=f"s3://{BUCKET}/async/png/",
        boto_session=aws.session,
        wait=False,
    )
    assert output.startswith("s3://")
    (sent,) = [c.headers for c in aws.calls if c.operation == "InvokeEndpointAsync"]
    assert sent["X-Amzn-SageMaker-Content-Type"] == "image/png"
    key = sent["X-Amzn-SageMaker-InputLocation"].split(f"s3://{BUCKET}/", 1)[1]
    assert key.startswith("async/png/") and key.endswith(".png")
    uploaded = aws.session.client("s3").get_object(Bucket=BUCKET, Key=key)
    assert uploaded["Body"].read() == outside_plugin.PNG
    assert uploaded["ContentType"] == "image/png"


def test_transform_of_a_png_prefix_sends_one_image_per_request(aws, sm, endpoint, png_plugin):
    launcher.transform(
        model_name=endpoint,
        input_s3_uri=f"s3://{BUCKET}/images/",
        output_s3_uri=f"s3://{BUCKET}/images-out/",
        content_type="image/png",
        model=png_plugin,
        name="batch-png",
        instance_type="ml.m5.xlarge",
        boto_session=aws.session,
        wait=False,
    )
    d = described(sm.describe_transform_job(TransformJobName="batch-png"))
    assert d["TransformInput"]["ContentType"] == "image/png"
    assert d["TransformInput"]["SplitType"] == "None"
    assert d["BatchStrategy"] == "SingleRecord"
    assert d["TransformOutput"] == {
        "S3OutputPath": f"s3://{BUCKET}/images-out/",
        "Accept": "application/json",
        "AssembleWith": "None",
    }
    assert (d["MaxConcurrentTransforms"], d["MaxPayloadInMB"]) == (4, 6)


def test_transform_from_a_training_job_checks_its_plugin_before_creating_a_model(
    aws, sm, png_plugin, capsys
):
    """The job's own `model` hyperparameter decides which types the model reads."""
    texts = launcher.train(train=TRAIN, role=ROLE, image_uri=IMAGE, boto_session=new_session(),
                           wait=False).name  # fmt: skip
    args = dict(input_s3_uri=f"s3://{BUCKET}/images/", output_s3_uri=f"s3://{BUCKET}/o/",
                content_type="image/png", role=ROLE, image_uri=IMAGE, boto_session=aws.session,
                wait=False)  # fmt: skip
    with pytest.raises(launcher.LauncherError, match="plug-in text_classifier reads"):
        launcher.transform(training_job=texts, name="png-from-texts", **args)
    assert aws.operations() == ["DescribeTrainingJob"]  # no model was created
    images = launcher.train(
        train=TRAIN, hyperparameters={"model": png_plugin}, role=ROLE, image_uri=IMAGE,
        boto_session=new_session(), wait=False,
    ).name  # fmt: skip
    launcher.transform(training_job=images, name="png-from-images", **args)
    assert (
        sm.describe_transform_job(TransformJobName="png-from-images")["TransformInput"]["SplitType"]
        == "None"
    )
    # A plug-in this laptop cannot import (kept on another machine): the server judges.
    sm.create_training_job(
        TrainingJobName="trained-elsewhere",
        HyperParameters={"model": "kept_on_another_machine"},
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/elsewhere"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    launcher.transform(training_job="trained-elsewhere", name="png-from-elsewhere", **args)
    assert "content types not checked" in capsys.readouterr().out


def test_cli_train_help_lists_a_plugin_on_pythonpath(tmp_path):
    outside_plugin.write(tmp_path)
    result = run_cli("train", "--hp", f"model={outside_plugin.NAME}", "--help",
                     env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"model={outside_plugin.NAME}:" in result.stdout
    assert outside_plugin.HYPERPARAMETER in result.stdout


# Dry runs against the moto server: JSON out, exit 0, and nothing created there.
def resources(sm) -> dict[str, int]:
    counts = {
        "training jobs": len(sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]),
        "tuning jobs": len(
            sm.list_hyper_parameter_tuning_jobs(MaxResults=100)["HyperParameterTuningJobSummaries"]
        ),
        "models": len(sm.list_models(MaxResults=100)["Models"]),
        "endpoint configs": len(sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]),
        "endpoints": len(sm.list_endpoints(MaxResults=100)["Endpoints"]),
        "transform jobs": len(sm.list_transform_jobs(MaxResults=100)["TransformJobSummaries"]),
    }
    s3 = new_session().client("s3").list_objects_v2(Bucket=BUCKET, Prefix="dry/")
    counts["dry-run objects"] = s3.get("KeyCount", 0)
    targets = (
        new_session()
        .client("application-autoscaling")
        .describe_scalable_targets(ServiceNamespace="sagemaker")
    )
    counts["scalable targets"] = len(targets["ScalableTargets"])
    return counts


DRY_RUNS = {
    "train": ["train", "--train", TRAIN, "--hp", "epochs=2", "--role", ROLE, "--image-uri", IMAGE],
    "tune": ["tune", "--train", TRAIN, "--validation", VALIDATION, "--range",
             "learning_rate=1e-5:1e-3:log", "--objective", "val_f1"],
    "deploy": ["deploy", "--training-job", "any-job", "--name", "dry-endpoint",
               "--instance-type", GPU_INSTANCE, "--min-instances", "1", "--max-instances", "2",
               "--target-invocations-per-instance", "100"],
    "transform": ["transform", "--model-data", f"s3://{BUCKET}/m.tar.gz", "--input",
                  f"s3://{BUCKET}/images/", "--output", f"s3://{BUCKET}/o/", "--content-type",
                  "image/png", "--name", "dry-batch"],
    "invoke": ["invoke", "--endpoint", "dry-endpoint", "--data", "{}",
               "--async-input-s3-uri", f"s3://{BUCKET}/dry/in/"],
}  # fmt: skip
DRY_RUN_FIRST = {
    "train": "CreateTrainingJob",
    "tune": "CreateHyperParameterTuningJob",
    "deploy": "CreateModel",
    "transform": "CreateModel",
    "invoke": "PutObject",
}


@pytest.mark.parametrize("command", DRY_RUNS)
def test_cli_dry_run_prints_requests_and_creates_nothing(sm, capsys, command):
    before = resources(sm)
    assert main([*DRY_RUNS[command], "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dry_run"] is True and printed["region"] == REGION
    assert printed["requests"][0]["operation"] == DRY_RUN_FIRST[command]
    assert resources(sm) == before


def test_dry_run_prints_what_the_real_launch_sends(aws):
    """Built by the same code: the dry run's requests are the real ones, on the wire."""
    common = dict(role=ROLE, image_uri=IMAGE, region=REGION)
    train = dict(train=TRAIN, hyperparameters={"epochs": 2}, spot=True, base_job_name="same",
                 checkpoint_s3_uri=f"s3://{BUCKET}/ckpt/same/", **common)  # fmt: skip
    dry = launcher.dry_run(launcher.train, **train)
    launcher.train(**train, boto_session=aws.session, wait=False)
    (real,) = aws.sent("CreateTrainingJob")
    (printed,) = dry.requests
    for request in (real, printed.params):
        assert request.pop("TrainingJobName").startswith("same-")  # a timestamp each
    assert printed.params == real
    deploy = dict(model_data=f"s3://{BUCKET}/model.tar.gz", name="same-endpoint",
                  instance_type=GPU_INSTANCE, serving={"workers": 2}, **common)  # fmt: skip
    dry = launcher.dry_run(launcher.deploy, **deploy)
    aws.calls.clear()
    launcher.deploy(**deploy, boto_session=aws.session, wait=False)
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        (printed,) = [r.params for r in dry.requests if r.operation == operation]
        assert aws.sent(operation) == [printed]


# --- many models on one endpoint --------------------------------------------------------------
MODELS = f"s3://{BUCKET}/models/"
CPU_IMAGE = IMAGE.replace(":latest", ":latest-cpu")


def put_model(uri: str, body: bytes) -> None:
    bucket, key = uri[len("s3://") :].split("/", 1)
    new_session().client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def read_object(uri: str) -> bytes | None:
    bucket, key = uri[len("s3://") :].split("/", 1)
    try:
        return new_session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None


def model_artifact(sm, job: str) -> str:
    return sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]


def test_cli_deploys_a_multi_model_endpoint_on_the_prefix(sm, capsys):
    code = main(["deploy", "--multi-model", "--model-prefix", MODELS, "--name", "per-customer",
                 "--role", ROLE, "--image-uri", CPU_IMAGE, "--no-wait"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    container = sm.describe_model(ModelName="per-customer")["PrimaryContainer"]
    assert (container["Mode"], container["ModelDataUrl"]) == ("MultiModel", MODELS)
    assert container["Environment"] == {
        "MODEL_SERVER_MODE": "realtime",
        "MODEL_SERVER_MULTI_MODEL": "true",
    }
    (variant,) = sm.describe_endpoint_config(EndpointConfigName="per-customer")[
        "ProductionVariants"
    ]
    assert variant["InstanceType"] == "ml.m5.xlarge"  # a CPU type by default
    out = capsys.readouterr().out
    assert "multi-model, serving the model.tar.gz files under " + MODELS in out
    assert "CPU image" not in out  # the image is the -cpu one
    assert main(["describe", "--endpoint", "per-customer"]) == 0
    described = capsys.readouterr().out
    assert "endpoint per-customer: InService (realtime, multi-model)" in described
    assert f"the model.tar.gz files under {MODELS}" in described


def test_multi_model_endpoint_autoscales_and_captures_like_a_single_model_one(aws, sm, capsys):
    launcher.deploy(
        multi_model=True, model_prefix=MODELS, name="per-region", instance_type="ml.c5.xlarge",
        min_instances=1, max_instances=3, target_invocations_per_instance=600,
        capture_s3_uri=f"s3://{BUCKET}/capture/", role=ROLE, image_uri=IMAGE,
        boto_session=aws.session, poll_seconds=0.01,
    )  # fmt: skip
    # The image is not tagged -cpu: said, not refused (a tag is the user's to choose).
    assert "use the CPU image (build_and_push.sh --cpu)" in capsys.readouterr().out
    (target,), (policy,) = scaling_of("per-region")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 600.0
    config = sm.describe_endpoint_config(EndpointConfigName="per-region")
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/capture/"
    (request,) = aws.sent("CreateModel")
    assert request["PrimaryContainer"]["Mode"] == "MultiModel"


def test_a_gpu_instance_type_is_refused_for_a_multi_model_endpoint(sm, capsys):
    models = len(sm.list_models(MaxResults=100)["Models"])
    code = main(["deploy", "--multi-model", "--model-prefix", MODELS, "--name", "gpu-mme",
                 "--instance-type", GPU_INSTANCE, "--role", ROLE, "--image-uri", IMAGE])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "CPU instances only" in err and "build_and_push.sh --cpu" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert len(sm.list_models(MaxResults=100)["Models"]) == models


def test_cli_invoke_names_the_target_model(runtime, capsys):
    runtime.answer = (b'{"label": "billing"}', "application/json")
    argv = ["invoke", "--endpoint", "per-customer", "--data", '{"text": "hi"}']
    assert main([*argv, "--target-model", "eu/customer-42.tar.gz"]) == 0
    ((path, headers, body),) = runtime.requests
    assert path == "/endpoints/per-customer/invocations"
    assert headers["X-Amzn-SageMaker-Target-Model"] == "eu/customer-42.tar.gz"
    assert body == b'{"text": "hi"}'
    assert json.loads(capsys.readouterr().out) == {"label": "billing"}


@pytest.mark.parametrize(
    "name,message",
    [
        ("/customer-42.tar.gz", "without a leading /"),
        ("../other/customer-42.tar.gz", "no empty, '.' or '..' parts"),
        ("eu//customer-42.tar.gz", "no empty, '.' or '..' parts"),
        ("s3://bucket/models/customer-42.tar.gz", "not a URI"),
        ("customer-42.tar.gz\r\nX-Injected: 1", "printable ASCII characters only"),
        ("kund\u00e9-42.tar.gz", "printable ASCII characters only"),
        (" customer-42.tar.gz", "not starting with a space"),
        ("x" * 1025, "SageMaker takes at most 1024"),
        ("", "expected the model's key"),
    ],
)
def test_bad_target_models_are_refused_before_any_request(runtime, capsys, name, message):
    argv = ["invoke", "--endpoint", "per-customer", "--data", "{}", "--target-model", name]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert runtime.requests == []


def test_add_model_copies_a_training_jobs_model_under_the_prefix(aws, sm, trained, capsys):
    source = model_artifact(sm, trained)
    put_model(source, b"model of customer 42")
    destination = launcher.add_model(
        training_job=trained, model_prefix=MODELS, name="customer-42.tar.gz",
        boto_session=aws.session,
    )  # fmt: skip
    assert destination == MODELS + "customer-42.tar.gz"
    assert read_object(destination) == b"model of customer 42"
    (copy,) = [c for c in aws.calls if c.operation == "CopyObject"]
    assert copy.headers["If-None-Match"] == "*"  # S3 refuses the copy if the key appeared
    assert "invoke it with --target-model customer-42.tar.gz" in capsys.readouterr().out

    # The same name again: refused, the object untouched; --overwrite replaces it.
    put_model(f"s3://{BUCKET}/elsewhere/v2.tar.gz", b"model of customer 42, v2")
    argv = ["add-model", "--from", f"s3://{BUCKET}/elsewhere/v2.tar.gz", "--to", MODELS,
            "--name", "customer-42.tar.gz"]  # fmt: skip
    assert main(argv) == 2
    assert "customer-42.tar.gz exists: pass --overwrite" in capsys.readouterr().err
    assert read_object(destination) == b"model of customer 42"
    assert main([*argv, "--overwrite"]) == 0
    assert read_object(destination) == b"model of customer 42, v2"
    # Named after the job by default; a source that is not there is refused.
    assert main(["add-model", "--training-job", trained, "--to", MODELS]) == 0
    assert read_object(f"{MODELS}{trained}.tar.gz") == b"model of customer 42"
    missing = ["add-model", "--from", f"s3://{BUCKET}/nothing/here.tar.gz", "--to", MODELS]
    assert main(missing) == 2
    assert "no such object" in capsys.readouterr().err


def test_delete_of_a_multi_model_endpoint_leaves_its_models_in_s3(aws, sm, capsys):
    put_model(MODELS + "kept.tar.gz", b"a model")
    name = launcher.deploy(
        multi_model=True, model_prefix=MODELS, name="mme-to-delete", role=ROLE,
        image_uri=CPU_IMAGE, boto_session=new_session(), wait=False,
    ).endpoint_name  # fmt: skip
    deleted = launcher.delete(name, boto_session=aws.session)
    assert deleted == [f"endpoint {name}", f"endpoint config {name}", f"model {name}"]
    assert f"left the model.tar.gz files under {MODELS} as they are" in capsys.readouterr().out
    assert read_object(MODELS + "kept.tar.gz") == b"a model"
    with pytest.raises(ClientError):
        sm.describe_model(ModelName=name)


# moto 5.2.1 has no inference components, and its Application Auto Scaling knows no
# `sagemaker:inference-component:DesiredCopyCount` dimension: `components` plays
# SageMaker's part (Create/Describe/Delete/ListInferenceComponents, each component
# InService at once), lets an endpoint config's variant name no model (as SageMaker does
# for an endpoint of components), and adds the dimension.
@pytest.fixture
def components(moto, monkeypatch) -> dict[str, dict]:
    from enum import Enum

    from moto.applicationautoscaling import models as aas_models
    from moto.applicationautoscaling import responses as aas_responses
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    store: dict[str, dict] = {}

    def arn(kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:123456789012:{kind}/{name}"

    def known(self) -> dict:
        name = self._get_param("InferenceComponentName")
        if name not in store:
            raise ValidationError(message=f"Could not find inference component '{name}'.")
        return store[name]

    def create(self):
        name, endpoint = self._get_param("InferenceComponentName"), self._get_param("EndpointName")
        self.sagemaker_backend.describe_endpoint(endpoint)  # ValidationError when missing
        specification = self._get_param("Specification")
        self.sagemaker_backend.describe_model(specification["ModelName"])
        copies = self._get_param("RuntimeConfig")["CopyCount"]
        store[name] = {
            "InferenceComponentName": name, "InferenceComponentArn": arn("inference-component", name),
            "EndpointName": endpoint, "EndpointArn": arn("endpoint", endpoint),
            "VariantName": self._get_param("VariantName"), "Specification": specification,
            "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
            "InferenceComponentStatus": "InService", "CreationTime": time.time(),
            "LastModifiedTime": time.time(),
        }  # fmt: skip
        return ActionResult({"InferenceComponentArn": store[name]["InferenceComponentArn"]})

    def listed(self):
        endpoint = self._get_param("EndpointNameEquals")
        keys = ("InferenceComponentName", "InferenceComponentArn", "EndpointName", "EndpointArn",
                "VariantName", "InferenceComponentStatus", "CreationTime", "LastModifiedTime")  # fmt: skip
        found = [c for c in store.values() if endpoint in (None, c["EndpointName"])]
        return ActionResult({"InferenceComponents": [{k: c[k] for k in keys} for c in found]})

    def delete(self):
        del store[known(self)["InferenceComponentName"]]
        return EmptyResult()

    for action, fn in (
        ("create_inference_component", create),
        ("describe_inference_component", lambda self: ActionResult(known(self))),
        ("list_inference_components", listed),
        ("delete_inference_component", delete),
    ):
        monkeypatch.setattr(SageMakerResponse, action, fn, raising=False)
    checks = SageMakerModelBackend.validate_production_variants
    monkeypatch.setattr(
        SageMakerModelBackend,
        "validate_production_variants",
        lambda self, variants: checks(self, [v for v in variants if "ModelName" in v]),
    )
    dimensions = {d.name: d.value for d in aas_models.ScalableDimensionValueSet}
    dimensions["SAGEMAKER_INFERENCE_COMPONENT"] = "sagemaker:inference-component:DesiredCopyCount"
    extended = Enum("ScalableDimensionValueSet", dimensions)
    monkeypatch.setattr(aas_models, "ScalableDimensionValueSet", extended)
    monkeypatch.setattr(aas_responses, "ScalableDimensionValueSet", extended)
    return store


def component_scaling(name: str) -> tuple[list[dict], list[dict]]:
    aas = new_session().client("application-autoscaling")
    resource = f"inference-component/{name}"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    return targets["ScalableTargets"], policies["ScalingPolicies"]


def test_component_on_a_new_endpoint_scales_by_copies_and_is_deleted_alone(
    aws, sm, trained, components, runtime, capsys
):
    deployed_component = launcher.deploy_component(
        name="support-en", endpoint="shared-components", training_job=trained,
        create_endpoint=True, instance_type=GPU_INSTANCE, min_instances=1, max_instances=2,
        copies=2, memory_mb=2048, cpus=1, accelerators=1, serving={"max_batch_size": 32},
        min_copies=1, max_copies=4, target_invocations_per_copy=120,
        role=ROLE, image_uri=IMAGE, boto_session=aws.session, poll_seconds=0.01,
    )  # fmt: skip
    assert deployed_component.status == "InService" and deployed_component.endpoint_created
    (config,) = aws.sent("CreateEndpointConfig")
    assert config == {
        "EndpointConfigName": "shared-components",
        "ExecutionRoleArn": ROLE,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "InstanceType": GPU_INSTANCE,
                "InitialInstanceCount": 1,
                "ManagedInstanceScaling": {
                    "Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 2,
                },
            }
        ],
    }  # fmt: skip
    operations = aws.operations()
    # The component goes on once its endpoint is InService; its scaling once it is.
    assert operations.index("CreateInferenceComponent") > operations.index("DescribeEndpoint")
    assert operations.index("RegisterScalableTarget") > max(
        i for i, op in enumerate(operations) if op == "DescribeInferenceComponent"
    )
    component = components["support-en"]
    assert component["EndpointName"] == "shared-components"
    assert component["VariantName"] == "AllTraffic"
    assert component["Specification"] == {
        "ModelName": "support-en",
        "ComputeResourceRequirements": {
            "MinMemoryRequiredInMb": 2048,
            "NumberOfCpuCoresRequired": 1.0,
            "NumberOfAcceleratorDevicesRequired": 1,
        },
    }
    assert component["RuntimeConfig"]["DesiredCopyCount"] == 2
    model = sm.describe_model(ModelName="support-en")["PrimaryContainer"]
    assert model["ModelDataUrl"] == model_artifact(sm, trained)
    assert model["Environment"] == {
        "MODEL_SERVER_MAX_BATCH_SIZE": "32",
        "MODEL_SERVER_MODE": "realtime",
    }
    (target,), (policy,) = component_scaling("support-en")
    assert (target["ScalableDimension"], target["MinCapacity"], target["MaxCapacity"]) == (
        "sagemaker:inference-component:DesiredCopyCount", 1, 4,
    )  # fmt: skip
    assert policy["PolicyName"] == "invocations-per-copy"
    assert policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
    }

    argv = ["invoke", "--endpoint", "shared-components", "--component", "support-en",
            "--data", '{"text": "hi"}']  # fmt: skip
    assert main(argv) == 0
    ((path, headers, _),) = runtime.requests
    assert path == "/endpoints/shared-components/invocations"
    assert headers["X-Amzn-SageMaker-Inference-Component"] == "support-en"
    capsys.readouterr()
    assert main(["describe", "--endpoint", "shared-components"]) == 0
    described = capsys.readouterr().out
    assert "endpoint shared-components: InService (realtime, inference components)" in described
    assert "component support-en: InService" in described

    assert main(["delete", "--component", "support-en"]) == 0
    out = capsys.readouterr().out
    for line in ("deleted scaling policy invocations-per-copy",
                 "deleted scalable target inference-component/support-en",
                 "deleted inference component support-en", "deleted model support-en"):  # fmt: skip
        assert line in out
    assert component_scaling("support-en") == ([], [])
    assert "support-en" not in components
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="support-en")
    assert sm.describe_endpoint(EndpointName="shared-components")["EndpointStatus"] == "InService"


def test_components_join_an_existing_endpoint_and_go_with_it(sm, trained, components, capsys):
    create = ["deploy", "--training-job", trained, "--endpoint", "team-endpoint", "--role", ROLE,
              "--image-uri", IMAGE, "--poll-seconds", "0.01", "--memory-mb", "1024"]  # fmt: skip
    assert main([*create, "--component", "team-a", "--create-endpoint",
                 "--instance-type", "ml.m5.xlarge"]) == 0  # fmt: skip
    assert main([*create, "--component", "team-b", "--copies", "3"]) == 0
    assert components["team-b"]["EndpointName"] == "team-endpoint"
    assert components["team-b"]["RuntimeConfig"]["DesiredCopyCount"] == 3
    # Creating it again is refused, as is a typo'd endpoint (nothing is created for either).
    models = len(sm.list_models(MaxResults=100)["Models"])
    assert main([*create, "--component", "team-c", "--create-endpoint"]) == 2
    assert "endpoint team-endpoint exists already" in capsys.readouterr().err
    create[create.index("team-endpoint")] = "team-endpiont"
    assert main([*create, "--component", "team-c"]) == 2
    assert "endpoint team-endpiont does not exist" in capsys.readouterr().err
    assert len(sm.list_models(MaxResults=100)["Models"]) == models

    assert main(["delete", "--endpoint", "team-endpoint", "--keep-model"]) == 0
    out = capsys.readouterr().out
    assert "deleted inference component team-a" in out
    assert "deleted inference component team-b" in out
    assert "deleted endpoint team-endpoint" in out
    assert components == {}
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName="team-endpoint")
    assert sm.describe_model(ModelName="team-b")["ModelName"] == "team-b"  # --keep-model


def test_a_component_is_refused_on_an_endpoint_that_serves_its_own_model(
    sm, endpoint, components, capsys
):
    models = len(sm.list_models(MaxResults=100)["Models"])
    code = main(["deploy", "--model-data", f"s3://{BUCKET}/m.tar.gz", "--component", "c-1",
                 "--endpoint", endpoint, "--memory-mb", "1024", "--role", ROLE,
                 "--image-uri", IMAGE])  # fmt: skip
    assert code == 2
    assert f"serves model {endpoint} itself" in capsys.readouterr().err
    assert len(sm.list_models(MaxResults=100)["Models"]) == models
    assert components == {}
