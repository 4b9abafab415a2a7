"""Issue 26 item 3: the launcher as a user meets it, without AWS.

A stub boto3 session answers each AWS call in-process (what a dry run answers, unless a
test says otherwise, or an error answer: throttling, access denied, a validation error,
an answer the SDK cannot read), so the command line's whole path runs: its checks, its
requests, its one-line errors and exit statuses, and the rollback of a failed deploy or
transform. What moto stores after a rollback is in tests/integration/test_launcher_rollback.py.
"""

from __future__ import annotations

import boto3
import pytest

from launcher import dryrun, tuning
from launcher.cli import build_parser, main
from launcher.cli.errors import explain
from launcher.settings import Target

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
WHERE = ["--region", "us-east-1", "--role", ROLE, "--image-uri", IMAGE]
DEPLOY = ["deploy", "--training-job", "job-1", "--name", "ep-1", "--instance-type",
          "ml.g4dn.xlarge", "--poll-seconds", "0.01", *WHERE]  # fmt: skip
TRANSFORM = ["transform", "--training-job", "job-1", "--input", "s3://b-1/i/", "--output",
             "s3://b-1/o/", "--name", "batch-1", "--instance-type", "ml.m5.xlarge",
             "--no-wait", *WHERE]  # fmt: skip
# The resources whose Delete* AWS answers "could not find" unless they were created.
KINDS = ("Model", "EndpointConfig", "Endpoint")


class StubAWS:
    """A boto3 session whose calls never leave the process: each is recorded, then
    answered from `answers` (operation -> response), else as a dry run answers it."""

    def __init__(self):
        self.session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="stub", aws_secret_access_key="stub"
        )
        self.calls: list[tuple[str, dict]] = []
        self.answers: dict[str, dict] = {}
        self.errors: dict[str, tuple[str, str]] = {}  # operation -> (code, message)
        self.created: set[tuple[str, str]] = set()
        self.session.events.register("before-parameter-build", self._keep)
        self.session.events.register("before-call", self._answer)

    def _keep(self, params, context, **_):
        context["stub_params"] = dict(params)

    def _answer(self, model, context, **_):
        from botocore.awsrequest import AWSResponse

        op = model.name
        params = context.get("stub_params", {})
        self.calls.append((op, params))
        meta = {"HTTPStatusCode": 200, "RetryAttempts": 0}
        verb, kind = op[:6], op[6:]
        if verb == "Delete" and kind in KINDS and (kind, params[f"{kind}Name"]) not in self.created:
            self.errors.setdefault(op, ("ValidationException", f"Could not find {kind}"))
        elif verb == "Create" and kind in KINDS and op not in self.errors:
            self.created.add((kind, params[f"{kind}Name"]))
        if op in self.errors:
            code, message = self.errors[op]
            meta["HTTPStatusCode"] = 400
            error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": meta}
            return AWSResponse("https://stub.invalid/", 400, {}, None), error
        if op in self.answers:
            parsed = dict(self.answers[op])
        elif op.startswith("Delete") or op in ("DeregisterScalableTarget",):
            parsed = {}
        elif op == "DescribeScalableTargets":
            parsed = {"ScalableTargets": []}
        else:
            request = dryrun.Request(model.service_model.service_name, op, params)
            parsed = dryrun._stand_in(request, "us-east-1")
            if op == "DescribeTrainingJob":
                parsed["ModelArtifacts"] = {"S3ModelArtifacts": "s3://b-1/job-1/model.tar.gz"}
        parsed["ResponseMetadata"] = meta
        return AWSResponse("https://stub.invalid/", 200, {}, None), parsed

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]


@pytest.fixture
def stub(offline_aws, monkeypatch) -> StubAWS:
    aws = StubAWS()
    monkeypatch.setattr(Target, "boto_session", lambda self: aws.session)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return aws


def run(capsys, argv) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# --- --env names: a typo of the image's own variables fails before AWS ---------------------
@pytest.mark.parametrize(
    "variable,meant",
    [
        ("MODEL_SERVER_WORKRS", "MODEL_SERVER_WORKERS (serving setting workers)"),
        ("MODEL_SEVER_TIMEOUT", "MODEL_SERVER_TIMEOUT"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "MODEL_SERVER_WORKERS"),  # the toolkit's name
        ("SAGEMAKER_MAX_PAYLOAD_MB", "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
        ("MODEL_SERVER_BACKBONES", "MODEL_SERVER_BACKBONE (model=text_classifier's backbone)"),
    ],
)
def test_a_misspelt_serving_variable_is_refused_naming_the_right_one(stub, capsys, variable, meant):
    code, _out, err = run(capsys, [*DEPLOY, "--env", f"{variable}=2"])
    assert code == 2
    said = f"environment variable {variable}: the image reads no such variable; did you mean"
    assert f"{said} {meant}" in err
    assert stub.calls == []


def test_the_users_own_variables_go_as_they_are(stub, capsys):
    own = ["LOG_LEVEL=DEBUG", "HF_HOME=/tmp/hf", "OMP_NUM_THREADS=2", "MODEL_SERVER_TOKENIZER=x",
           "MODEL_SERVER_BACKBONE=transformers", "MY_FEATURE_FLAG=on"]  # fmt: skip
    code, _out, err = run(capsys, [*DEPLOY, *(a for pair in own for a in ("--env", pair))])
    assert code == 0, err
    ((_, model),) = [c for c in stub.calls if c[0] == "CreateModel"]
    env = model["PrimaryContainer"]["Environment"]
    assert {f"{k}={v}" for k, v in env.items()} >= set(own)


# --- serverless: 2048 MB by default, one worker ---------------------------------------------
def test_serverless_defaults_to_2048_mb_and_refuses_more_than_one_worker(stub, capsys):
    serverless = [*DEPLOY, "--mode", "serverless"]
    code, _out, err = run(capsys, serverless)
    assert code == 0, err
    ((_, config),) = [c for c in stub.calls if c[0] == "CreateEndpointConfig"]
    assert config["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] == 2048
    for extra in (["--workers", "2"], ["--env", "MODEL_SERVER_WORKERS=0"]):
        stub.calls.clear()
        code, _out, err = run(capsys, [*serverless, *extra])
        assert code == 2
        assert "a serverless endpoint runs one worker" in err and stub.calls == []
    assert run(capsys, [*serverless, "--workers", "1"])[0] == 0


# --- help: what it says, and as whom --------------------------------------------------------
def help_of(capsys, *argv, prog: str | None = None) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"], **({"prog": prog} if prog else {}))
    return capsys.readouterr().out


def test_the_examples_keep_their_line_breaks(capsys):
    out = help_of(capsys)
    continued = [line for line in out.splitlines() if line.endswith(" \\")]
    assert len(continued) == 8  # 5 examples, and 3 of the many-model ones
    lines = out.splitlines()
    for line in continued:
        assert lines[lines.index(line) + 1].startswith("      --")


def test_usage_and_examples_name_the_program_as_it_was_run(capsys):
    out = help_of(capsys, prog="byoc-launch")
    assert out.startswith("usage: byoc-launch [-h] COMMAND")
    assert "  byoc-launch train --train" in out and "python -m launcher" not in out
    out = help_of(capsys, "tune", prog="byoc-launch")
    assert out.startswith("usage: byoc-launch tune")
    assert "byoc-launch tune --hp model=my_package --help" in out
    assert "python -m launcher" not in out
    assert help_of(capsys).startswith("usage: python -m launcher [-h] COMMAND")


def test_tune_neither_lists_nor_takes_what_a_tuning_job_refuses(capsys):
    out = help_of(capsys, "tune")
    for flag in ("--keep-alive-seconds", "--tensorboard-s3-uri"):
        assert f"  {flag}" not in out and flag in help_of(capsys, "train")
        with pytest.raises(SystemExit) as refused:
            build_parser().parse_args(
                ["tune", "--train", "s3://b-1/t/", "--range", "dropout=0:0.5", "--objective",
                 "val_f1", flag, "60"]
            )  # fmt: skip
        assert refused.value.code == 2


def test_delete_describe_and_wait_say_what_they_do(capsys):
    delete = " ".join(help_of(capsys, "delete").split())
    assert "its autoscaling (the scaling policies, the wake-from-zero CloudWatch alarm" in delete
    assert "--model NAME" in delete
    for command in ("describe", "wait"):
        assert "Stopped" in help_of(capsys, command)
    for command, says in (
        ("deploy", "delete --endpoint NAME` removes them all"),
        ("transform", "delete --model NAME"),
        ("train", "Leaves the job"),
        ("tune", "Leaves the tuning job"),
    ):
        assert says in " ".join(help_of(capsys, command).split()), command


def test_the_report_says_when_the_best_trial_left_no_model():
    stopped = tuning.Trial("trial-early", "Stopped", 0.91, {"dropout": "0.1"})
    done = tuning.Trial("trial-done", "Completed", 0.85, {"dropout": "0.2"})
    info = tuning.TuningJobInfo(
        "tune-1", "Completed", "val_f1", "Maximize", best=stopped, trials=(stopped, done)
    )
    last = tuning.report(info)[-1]
    assert last == (
        "the best trial, trial-early, is Stopped: it left no model; deploy --tuning-job "
        "takes the best completed one, trial-done val_f1=0.85"
    )
    alone = tuning.TuningJobInfo("tune-1", "Stopped", "val_f1", "Maximize", best=stopped,
                                 trials=(stopped,))  # fmt: skip
    assert "nothing to deploy yet" in tuning.report(alone)[-1]
    fine = tuning.TuningJobInfo("tune-1", "Completed", "val_f1", "Maximize", best=done,
                                trials=(stopped, done))  # fmt: skip
    assert tuning.report(fine)[-1].startswith("best trial-done")


# --- AWS's errors: one line, what to do, exit 1 (2 when nothing could be sent) --------------
@pytest.mark.parametrize(
    "code,message,says",
    [
        ("ThrottlingException", "Rate exceeded", "wait a minute and run again"),
        ("AccessDeniedException", "User: arn:aws:iam::1:user/u is not authorized",
         "your AWS identity may not call CreateModel"),
        ("ValidationException", "Could not access model data", "SageMaker's own check"),
        ("ResourceLimitExceeded", "quota", "Service Quotas"),
        ("ExpiredTokenException", "The security token included in the request is expired",
         "AWS did not accept the credentials"),
        ("InternalFailure", "oops", "AWS refused CreateModel (InternalFailure): oops"),
    ],
)  # fmt: skip
def test_an_aws_error_is_one_line_saying_what_to_do(stub, capsys, code, message, says):
    stub.errors["CreateModel"] = (code, message)
    status, _out, err = run(capsys, DEPLOY)
    assert status == 1
    (line,) = err.splitlines()
    assert line.startswith(f"error: AWS refused CreateModel ({code}): {message}") and says in line


def test_no_credentials_exit_2_before_any_request(offline_aws, monkeypatch, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for argv in (["delete", "--endpoint", "ep-1", "--region", "us-east-1"],
                 ["invoke", "--endpoint", "ep-1", "--data", "{}", "--region", "us-east-1"],
                 DEPLOY):  # fmt: skip
        status, _out, err = run(capsys, argv)
        assert status == 2, err
        (line,) = err.splitlines()
        assert line.startswith("error: no usable AWS credentials") and "aws configure" in line


def test_no_region_exit_2(offline_aws, capsys):
    for argv in (["delete", "--endpoint", "ep-1"], ["describe", "--tuning-job", "t-1"],
                 ["wait", "--endpoint", "ep-1"]):  # fmt: skip
        status, _out, err = run(capsys, argv)
        assert status == 2 and "no AWS region: pass --region" in err


def test_the_rest_of_botocore_and_the_sdk_in_one_line():
    from botocore.exceptions import EndpointConnectionError, NoRegionError, ReadTimeoutError
    from pydantic import BaseModel

    class Shape(BaseModel):
        vpc_config: dict[str, list[str]]

    with pytest.raises(Exception) as pydantic_error:
        Shape(vpc_config={"subnets": "x"})
    for exc, code, says in (
        (NoRegionError(), 2, "no AWS region"),
        (EndpointConnectionError(endpoint_url="https://x"), 1, "could not reach AWS"),
        (ReadTimeoutError(endpoint_url="https://x"), 1, "could not reach AWS"),
        (pydantic_error.value, 1, "the SageMaker SDK could not read AWS's answer: vpc_config"),
        (KeyError("boom"), 1, "unexpected builtins.KeyError: 'boom' (run again with LAUNCHER_DEBUG=1"),
    ):  # fmt: skip
        status, message = explain(exc)
        assert (status, "\n" in message) == (code, False) and says in message, message


def test_launcher_debug_shows_the_traceback(stub, capsys, monkeypatch):
    stub.errors["CreateModel"] = ("AccessDeniedException", "no")
    monkeypatch.setenv("LAUNCHER_DEBUG", "1")
    with pytest.raises(Exception, match="AccessDenied"):
        main(DEPLOY)


# --- rollback: a failed deploy or transform leaves nothing it created ---------------------
def test_a_deploy_refused_at_its_endpoint_config_deletes_its_model(stub, capsys):
    stub.errors["CreateEndpointConfig"] = ("ValidationException", "Invalid instance type")
    status, out, err = run(capsys, DEPLOY)
    assert status == 1 and "AWS refused CreateEndpointConfig" in err
    writes = [op for op in stub.operations() if not op.startswith("Describe")]
    assert writes == ["CreateModel", "CreateEndpointConfig", "DeleteEndpointConfig", "DeleteModel"]
    assert "deploy failed: rolling back what it created" in out
    assert "rolled back: deleted model ep-1" in out
    assert "endpoint config ep-1" not in out.split("rolling back")[1]  # it was never created


def test_an_answer_the_sdk_cannot_read_rolls_back_the_model(stub, capsys):
    """Plain moto answers DescribeModel with `VpcConfig: {}`: the SDK's pydantic refuses it
    after CreateModel went through."""
    stub.answers["DescribeModel"] = {"ModelName": "ep-1", "VpcConfig": {}}
    status, out, err = run(capsys, DEPLOY)
    assert status == 1
    (line,) = err.splitlines()
    assert "the SageMaker SDK could not read AWS's answer: vpc_config" in line
    assert stub.operations()[-1] == "DeleteModel" and "rolled back: deleted model ep-1" in out


def test_a_failed_endpoint_is_rolled_back_whole(stub, capsys):
    stub.answers["DescribeEndpoint"] = {
        "EndpointName": "ep-1", "EndpointStatus": "Failed", "FailureReason": "no /ping answer",
    }  # fmt: skip
    status, _out, err = run(capsys, DEPLOY)
    assert status == 1 and "endpoint ep-1 is Failed: no /ping answer" in err
    deletes = [op for op in stub.operations() if op.startswith("Delete")]
    assert deletes == ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]


def test_denied_autoscaling_rolls_back_the_endpoint_and_the_scaling_put_so_far(stub, capsys):
    stub.errors["PutScalingPolicy"] = ("AccessDeniedException", "not allowed")
    stub.answers["DescribeScalableTargets"] = {"ScalableTargets": [{"ResourceId": "x"}]}
    stub.answers["DescribeScalingPolicies"] = {"ScalingPolicies": []}
    scaled = [*DEPLOY, "--min-instances", "1", "--max-instances", "2",
              "--target-invocations-per-instance", "100"]  # fmt: skip
    status, _out, err = run(capsys, scaled)
    assert status == 1 and "may not call PutScalingPolicy" in err
    after = stub.operations()[stub.operations().index("PutScalingPolicy") + 1 :]
    assert [op for op in after if not op.startswith("Describe")] == [
        "DeregisterScalableTarget", "DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel",
    ]  # fmt: skip


def test_a_wait_that_times_out_rolls_nothing_back(stub, capsys):
    stub.answers["DescribeEndpoint"] = {"EndpointName": "ep-1", "EndpointStatus": "Creating"}
    status, out, _err = run(capsys, [*DEPLOY, "--wait-timeout", "0.05"])
    assert status == 1 and "rolling back" not in out
    assert not [op for op in stub.operations() if op.startswith("Delete")]


def test_a_transform_refused_deletes_the_model_it_made_and_says_what_a_success_leaves(stub, capsys):
    status, out, err = run(capsys, TRANSFORM)
    assert status == 0, err
    assert "model batch-1 stays: run the next transform with --model-name batch-1, or " \
        "remove it with `delete --model batch-1`" in out  # fmt: skip
    stub.calls.clear()
    stub.errors["CreateTransformJob"] = ("ResourceLimitExceeded", "too many transform jobs")
    status, out, err = run(capsys, TRANSFORM)
    assert status == 1 and "Service Quotas" in err
    assert stub.operations()[-1] == "DeleteModel" and "rolled back: deleted model batch-1" in out
    assert "stays" not in out


def test_delete_model_removes_one_model(stub, capsys):
    argv = ["delete", "--model", "batch-1", "--region", "us-east-1"]
    stub.created.add(("Model", "batch-1"))
    status, out, err = run(capsys, argv)
    assert status == 0 and stub.calls == [("DeleteModel", {"ModelName": "batch-1"})]
    assert "deleted model batch-1" in out
    stub.created.clear()
    status, out, err = run(capsys, argv)
    assert status == 1
    assert err == "error: AWS refused DeleteModel (ValidationException): Could not find Model" \
        ": check the name, and the region (--region, AWS_REGION)\n"  # fmt: skip
