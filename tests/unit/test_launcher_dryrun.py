"""Issue 24: `--dry-run` checks everything and prints the requests, with no AWS at all.

Every test here runs with no credentials, no region (unless given), every AWS endpoint a
closed loopback port, and every socket connection refused and recorded: a dry run that
sent anything, or looked anything up on the network, fails. That the printed requests
are the ones a real launch sends is checked against a moto server in
tests/integration/test_launcher.py.
"""

import json
import os
import socket

import pytest

import launcher
from launcher.cli import main
from launcher.settings import IMAGE_PLACEHOLDER, ROLE_PLACEHOLDER
from tests import outside_plugin

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/text-classifier:latest"


@pytest.fixture
def no_aws(offline_aws, monkeypatch):
    """offline_aws without credentials, and no socket may connect anywhere."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise ConnectionRefusedError(f"dry-run test: no connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"a dry run tried to connect to {attempts}"


def dry(capsys, *argv) -> dict:
    code = main([*argv, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def operations(printed: dict) -> list[str]:
    return [r["operation"] for r in printed["requests"]]


def params(printed: dict, operation: str) -> dict:
    (found,) = [r["params"] for r in printed["requests"] if r["operation"] == operation]
    return found


def test_train_dry_run_needs_no_region_role_image_or_credentials(no_aws, capsys):
    printed = dry(capsys, "train", "--train", "s3://b-1/t/", "--hp", "epochs=3", "--spot",
                  "--checkpoint-s3-uri", "s3://b-1/ckpt/")  # fmt: skip
    assert printed["dry_run"] is True and printed["region"] == "<region>"
    assert operations(printed) == ["CreateTrainingJob"]
    request = params(printed, "CreateTrainingJob")
    assert request["RoleArn"] == ROLE_PLACEHOLDER
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE_PLACEHOLDER
    assert request["HyperParameters"] == {"epochs": "3"}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://b-1/ckpt/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert os.environ.get("SAGEMAKER_VALIDATE_ROLE") is None  # the switch is put back


def test_a_dry_run_uses_and_checks_what_is_given(no_aws, capsys):
    printed = dry(capsys, "train", "--train", "s3://b-1/t/", "--region", "eu-west-1",
                  "--role", ROLE, "--image-uri", IMAGE)  # fmt: skip
    request = params(printed, "CreateTrainingJob")
    assert (printed["region"], request["RoleArn"]) == ("eu-west-1", ROLE)
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--train", "s3://b-1/t/", "--hp", "epochs=0"], "epochs='0' is out of range"),
        (["train", "--train", "s3://b-1/t/", "--hp", "model=nope"], "no such plug-in"),
        (["train", "--train", "s3://b-1/t/", "--role", "SageMakerExecution"],
         "is not an IAM role ARN"),
        (["train", "--train", "s3://b-1/t/", "--region", "us-east-1", "--image-uri", IMAGE],
         "is in ECR region eu-west-1 but the launch targets us-east-1"),
        (["train", "--train", "s3://b-1/t/", "--instance-type", "ml.p9.huge"],
         "is not a SageMaker training instance type"),
        (["tune", "--train", "s3://b-1/t/", "--range", "learning_rate=1:0", "--objective",
          "val_f1"], "learning_rate"),
        (["deploy", "--training-job", "j", "--env", "BAD-NAME=1"], "environment variable name"),
        (["transform", "--model-name", "m", "--input", "s3://b-1/i/", "--output", "s3://b-1/o/",
          "--content-type", "image/png", "--model", "text_classifier"],
         "plug-in text_classifier reads"),
    ],
)  # fmt: skip
def test_a_dry_run_refuses_what_a_launch_refuses(no_aws, capsys, argv, message):
    assert main([*argv, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == "" and "Traceback" not in err


def test_tune_dry_run(no_aws, capsys):
    printed = dry(capsys, "tune", "--train", "s3://b-1/t/", "--validation", "s3://b-1/v/",
                  "--range", "learning_rate=1e-5:1e-3:log", "--objective", "val_f1",
                  "--name", "tune-1")  # fmt: skip
    assert operations(printed) == ["CreateHyperParameterTuningJob"]
    request = params(printed, "CreateHyperParameterTuningJob")
    assert request["HyperParameterTuningJobName"] == "tune-1"
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"][0]["Name"] == "learning_rate"
    assert request["TrainingJobDefinition"]["RoleArn"] == ROLE_PLACEHOLDER


def test_deploy_dry_run_reaches_autoscaling(no_aws, capsys):
    printed = dry(capsys, "deploy", "--training-job", "job-1", "--name", "ep-1",
                  "--min-instances", "1", "--max-instances", "3",
                  "--target-invocations-per-instance", "600", "--workers", "2")  # fmt: skip
    assert operations(printed) == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    model = params(printed, "CreateModel")["PrimaryContainer"]
    # Where the model.tar.gz comes from is AWS's to say: a placeholder names it.
    assert model["ModelDataUrl"] == "<model.tar.gz of training job job-1>"
    assert model["Environment"] == {"MODEL_SERVER_MODE": "realtime", "MODEL_SERVER_WORKERS": "2"}
    assert params(printed, "RegisterScalableTarget")["MaxCapacity"] == 3
    assert printed["reads"][0]["operation"] == "DescribeTrainingJob"


def test_async_and_serverless_deploy_dry_runs(no_aws, capsys):
    printed = dry(capsys, "deploy", "--model-data", "s3://b-1/model.tar.gz", "--mode", "async",
                  "--async-output-s3-uri", "s3://b-1/out/", "--min-instances", "0",
                  "--max-instances", "2", "--target-backlog-per-instance", "5")  # fmt: skip
    assert operations(printed)[-3:] == ["PutScalingPolicy", "PutScalingPolicy", "PutMetricAlarm"]
    config = params(printed, "CreateEndpointConfig")
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == "s3://b-1/out/"
    printed = dry(capsys, "deploy", "--tuning-job", "tune-1", "--mode", "serverless")
    assert operations(printed) == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    variant = params(printed, "CreateEndpointConfig")["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


def test_transform_dry_run_of_an_image_prefix(no_aws, capsys, png_plugin):
    printed = dry(capsys, "transform", "--training-job", "job-1", "--input", "s3://b-1/images/",
                  "--output", "s3://b-1/out/", "--content-type", "image/png",
                  "--model", png_plugin, "--name", "batch-1")  # fmt: skip
    assert operations(printed) == ["CreateModel", "CreateTransformJob"]
    job = params(printed, "CreateTransformJob")
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformInput"]["ContentType"] == "image/png"
    assert job["BatchStrategy"] == "SingleRecord"
    assert job["TransformOutput"] == {
        "S3OutputPath": "s3://b-1/out/",
        "Accept": "application/json",
        "AssembleWith": "None",
    }


def test_invoke_dry_runs(no_aws, capsys, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(outside_plugin.PNG)
    printed = dry(capsys, "invoke", "--endpoint", "ep-1", "--file", str(image))
    assert params(printed, "InvokeEndpoint") == {
        "EndpointName": "ep-1",
        "Body": f"<{len(outside_plugin.PNG)} bytes>",
        "ContentType": "image/png",
    }
    printed = dry(capsys, "invoke", "--endpoint", "ep-1", "--file", str(image),
                  "--async-input-s3-uri", "s3://b-1/in/")  # fmt: skip
    assert operations(printed) == ["PutObject", "InvokeEndpointAsync"]
    put = params(printed, "PutObject")
    assert put["Key"].startswith("in/") and put["Key"].endswith(".png")
    assert put["ContentType"] == "image/png"


def test_dry_run_from_python(no_aws):
    result = launcher.dry_run(launcher.train, train="s3://b-1/t/", hyperparameters={"epochs": 2})
    (request,) = result.requests
    assert request.operation == "CreateTrainingJob"
    assert request.params["HyperParameters"] == {"epochs": "2"}
    assert json.loads(result.as_json())["requests"][0]["operation"] == "CreateTrainingJob"
