"""Issue 26: SageMaker's own limits, refused before any request with a line naming them.

At each limit the dry run's requests pass the API-model check every test's requests go
through (tests/aws_api.py); one past it, the launcher refuses before building any. Before
these checks, each of the "over" launches below reached botocore and moto, both of which
let it through, and would have been refused by SageMaker.
"""

import pytest

import launcher
from launcher import metrics
from launcher.settings import LauncherError

TARGET = dict(
    region="us-east-1",
    role="arn:aws:iam::123456789012:role/SageMakerExecution",
    image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest",
)
MODEL = dict(model_data="s3://b-1/model.tar.gz", name="limits", instance_type="ml.g4dn.xlarge")
TRAIN = "s3://b-1/t/"


def s3(length: int, prefix: str = "s3://b-1/") -> str:
    return prefix + "k" * (length - len(prefix) - 1) + "/"


def train(**kwargs):
    return launcher.dry_run(launcher.train, **{"train": TRAIN, **TARGET, **kwargs})


def deploy(**kwargs):
    return launcher.dry_run(launcher.deploy, **{**MODEL, **TARGET, **kwargs})


def tune(ranges):
    return launcher.dry_run(launcher.tune, train=TRAIN, ranges=ranges, objective="val_f1", **TARGET)


def image(length: int) -> str:
    registry, tag = "123456789012.dkr.ecr.us-east-1.amazonaws.com/", ":latest"
    return registry + "r" * (length - len(registry) - len(tag)) + tag


def env(n: int) -> dict[str, str]:
    return {f"VAR_{i}": "1" for i in range(n)}


CASES = {
    # name: (launch at the limit, launch one past it, what the refusal says)
    "hyperparameter value 2500": (
        lambda: train(hyperparameters={"backbone": "b" * 2500}),
        lambda: train(hyperparameters={"backbone": "b" * 2501}),
        "hyperparameter backbone: a value of 2501 characters, SageMaker takes at most 2500",
    ),
    "a model's 100 variables, MODEL_SERVER_MODE among them": (
        lambda: deploy(env=env(99)),
        lambda: deploy(env=env(100)),
        "101 environment variables (with MODEL_SERVER_MODE, which deploy sets): a model "
        "takes at most 100",
    ),
    "MLflow URI 512": (
        lambda: train(mlflow_tracking_uri="https://m.example.com/" + "u" * 490),
        lambda: train(mlflow_tracking_uri="https://m.example.com/" + "u" * 491),
        "MLFLOW_TRACKING_URI: 513 characters, a training job's environment takes at most 512",
    ),
    "channel URI 1024": (
        lambda: train(train=s3(1024)),
        lambda: train(train=s3(1025)),
        "train channel: 1025 characters, SageMaker takes at most 1024",
    ),
    "data capture URI 512": (
        lambda: deploy(capture_s3_uri=s3(512)),
        lambda: deploy(capture_s3_uri=s3(513)),
        "data capture: 513 characters, SageMaker takes at most 512",
    ),
    "async output URI 512": (
        lambda: deploy(mode="async", async_output_s3_uri=s3(512)),
        lambda: deploy(mode="async", async_output_s3_uri=s3(513)),
        "async output: 513 characters, SageMaker takes at most 512",
    ),
    "image URI 255": (
        lambda: train(image_uri=image(255)),
        lambda: train(image_uri=image(256)),
        "image URI of 256 characters: SageMaker takes at most 255",
    ),
    "tuning value 256": (
        lambda: tune({"backbone": ["a" * 256, "b"]}),
        lambda: tune({"backbone": ["a" * 257, "b"]}),
        "range backbone: a value of 257 characters",
    ),
    "invocation 6 MB": (
        lambda: launcher.dry_run(launcher.invoke, "e-1", b"x" * (6 << 20),
                                 content_type="application/x-npy", region="us-east-1"),
        lambda: launcher.dry_run(launcher.invoke, "e-1", b"x" * ((6 << 20) + 1),
                                 content_type="application/x-npy", region="us-east-1"),
        "payload of 6291457 bytes: a real-time or serverless invocation takes at most 6291456",
    ),
    "custom attributes 1024": (
        lambda: launcher.dry_run(launcher.invoke, "e-1", "{}", custom_attributes="a" * 1024,
                                 region="us-east-1"),
        lambda: launcher.dry_run(launcher.invoke, "e-1", "{}", custom_attributes="a" * 1025,
                                 region="us-east-1"),
        "custom attributes: 1025 characters; SageMaker takes up to 1024 ASCII characters",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_at_the_limit_it_is_sent_one_past_it_refused(offline_aws, case):
    at_limit, over, message = CASES[case]
    assert at_limit().requests  # and tests/aws_api.py found nothing AWS would refuse
    with pytest.raises(LauncherError) as refused:
        over()
    assert message in str(refused.value)


def test_metric_definitions_sagemaker_would_refuse_are_refused(monkeypatch):
    names = tuple(f"metric_{i}" for i in range(metrics.MAX_DEFINITIONS + 1))
    monkeypatch.setattr(metrics, "metric_names", lambda model=None: names)
    with pytest.raises(LauncherError, match="logs 41 metrics with the platform's: SageMaker "
                       "charts at most 40"):  # fmt: skip
        metrics.metric_definitions("mine")
    monkeypatch.setattr(metrics, "metric_names", lambda model=None: ("m" * 256,))
    with pytest.raises(LauncherError, match="is too long for SageMaker"):
        metrics.metric_definitions("mine")
    monkeypatch.setattr(metrics, "metric_names", lambda model=None: ("m" * 255,))
    (definition,) = metrics.metric_definitions("mine")
    assert len(definition["Regex"]) <= metrics.MAX_REGEX
