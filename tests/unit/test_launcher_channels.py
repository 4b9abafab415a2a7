"""`--distribution` and `--input-mode`: parsed, checked and planned before any request."""

import pytest

import launcher
from launcher import channels
from launcher.cli import build_parser, main
from launcher.settings import LauncherError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
WHERE = ["--region", "us-east-1", "--role", ROLE, "--image-uri", IMAGE]
TARGET = dict(region="us-east-1", role=ROLE, image_uri=IMAGE)
TRAIN, VALIDATION = "s3://data-1/train/", "s3://data-1/validation/"


def test_a_bare_distribution_is_the_train_channels():
    assert channels.parse_distribution(None) == {}
    assert channels.parse_distribution(["sharded"]) == {"train": "sharded"}
    assert channels.parse_distribution(["sharded", "validation=sharded"]) == {
        "train": "sharded",
        "validation": "sharded",
    }


def test_the_plan_names_every_channels_distribution_and_mode():
    plan = launcher.plan_training(train=TRAIN, validation=VALIDATION, **TARGET)
    assert plan.distribution == {"train": "FullyReplicated", "validation": "FullyReplicated"}
    assert plan.input_mode == "File"
    plan = launcher.plan_training(
        train=TRAIN,
        validation=VALIDATION,
        distribution={"train": "sharded", "validation": "sharded"},
        input_mode="FastFile",
        **TARGET,
    )
    assert plan.distribution == {"train": "ShardedByS3Key", "validation": "ShardedByS3Key"}
    assert plan.input_mode == "FastFile"
    plan = launcher.plan_training(
        train=TRAIN, validation=VALIDATION, distribution="sharded", **TARGET
    )
    assert plan.distribution == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(input_mode="Pipe"), "input mode Pipe: this image reads a channel's files"),
        (dict(input_mode="file"), "input mode 'file': expected File or FastFile"),
        (dict(distribution="shard"), "distribution train='shard': expected sharded or replicated"),
        (dict(distribution={"validation": "sharded"}), "the job has no channel 'validation'"),
        (
            dict(pretrained="s3://data-1/backbone/", distribution={"pretrained": "sharded"}),
            "the pretrained channel cannot be sharded",
        ),
    ],
)
def test_bad_channel_settings_are_refused(overrides, message):
    with pytest.raises(LauncherError, match=message):
        launcher.plan_training(train=TRAIN, **TARGET, **overrides)


def test_the_cli_takes_repeated_distributions_and_refuses_pipe(offline_aws, capsys):
    args = build_parser().parse_args(
        [
            "train",
            "--train",
            TRAIN,
            "--distribution",
            "sharded",
            "--distribution",
            "validation=replicated",
        ]
    )
    assert args.distribution == ["sharded", "validation=replicated"]
    assert args.input_mode == "File"
    assert main(["train", "--train", TRAIN, "--input-mode", "Pipe", *WHERE]) == 2
    err = capsys.readouterr().err
    assert "input mode Pipe: this image reads a channel's files" in err and "Traceback" not in err
