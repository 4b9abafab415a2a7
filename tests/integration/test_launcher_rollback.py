"""Issue 26: what a failed command leaves in a real moto server: nothing it created.

A plain moto server (no patches) on loopback: the SageMaker SDK cannot read its
DescribeModel answer (`VpcConfig: {}`), which is how plain moto broke `deploy` with a raw
pydantic traceback. With the demo's patches (scripts/launch_demo.py, `patch_moto`),
moto's CreateEndpointConfig refuses ml.g5 instance types: a deploy refused there after
its model was created. Either way the command says one line, exits 1, and the model it
created is gone; and the model `transform --training-job` leaves on success goes with
`delete --model`.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

import launcher
from launcher.cli import main
from scripts.launch_demo import patch_moto
from tests import helpers

REGION = "us-east-1"
BUCKET = "rollback-test"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
WHERE = ["--role", ROLE, "--image-uri", IMAGE]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    home = tmp_path_factory.mktemp("aws")
    port = helpers.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as mp:
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
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        for key, value in env.items():
            mp.setenv(key, value)
        server.start()
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield
        server.stop()


@pytest.fixture(scope="module")
def sm(moto):
    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture(scope="module")
def trained(moto) -> str:
    return launcher.train(
        train=f"s3://{BUCKET}/data/train/", role=ROLE, image_uri=IMAGE, wait=False
    ).name


@pytest.fixture
def patched(monkeypatch):
    patch_moto(lambda owner, name, value: monkeypatch.setattr(owner, name, value, raising=False))


def models(sm) -> list[str]:
    return [m["ModelName"] for m in sm.list_models()["Models"]]


def test_plain_moto_deploy_says_one_line_and_rolls_back_its_model(sm, trained, capsys):
    argv = ["deploy", "--training-job", trained, "--name", "plain", "--instance-type",
            "ml.g4dn.xlarge", *WHERE]  # fmt: skip
    assert main(argv) == 1
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("error: the SageMaker SDK could not read AWS's answer: vpc_config")
    assert "rolled back: deleted model plain" in out
    assert "plain" not in models(sm)


def test_a_deploy_refused_at_its_endpoint_config_leaves_no_model(sm, trained, patched, capsys):
    argv = ["deploy", "--training-job", trained, "--name", "on-g5", "--instance-type",
            "ml.g5.xlarge", *WHERE]  # fmt: skip
    assert main(argv) == 1
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("error: AWS refused CreateEndpointConfig (ValidationException)")
    assert "model on-g5 created" in out and "rolled back: deleted model on-g5" in out
    assert "on-g5" not in models(sm)
    with pytest.raises(ClientError):
        sm.describe_endpoint_config(EndpointConfigName="on-g5")


def test_an_unknown_training_job_is_one_line(trained, patched, capsys):
    assert main(["deploy", "--training-job", "never-ran", *WHERE]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: AWS refused DescribeTrainingJob (ValidationException)")
    assert line.endswith("check the name, and the region (--region, AWS_REGION)")


def test_the_model_a_transform_leaves_goes_with_delete_model(sm, trained, patched, capsys):
    argv = ["transform", "--training-job", trained, "--input", f"s3://{BUCKET}/in/",
            "--output", f"s3://{BUCKET}/out/", "--name", "left-model", "--instance-type",
            "ml.m5.xlarge", "--no-wait", *WHERE]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "delete --model left-model" in capsys.readouterr().out
    assert "left-model" in models(sm)
    assert main(["delete", "--model", "left-model"]) == 0
    assert "left-model" not in models(sm)
