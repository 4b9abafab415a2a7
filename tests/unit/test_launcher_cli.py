"""The CLI's parsing and the plans behind each command: all checked before any request."""

import json

import pytest

import launcher
from launcher import metrics
from launcher.cli import build_parser, main
from launcher.settings import LauncherError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
WHERE = ["--region", "us-east-1", "--role", ROLE, "--image-uri", IMAGE]
TARGET = dict(region="us-east-1", role=ROLE, image_uri=IMAGE)


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("train", "deploy", "invoke", "transform", "delete", "wait", "metrics"):
        assert f"    {command}" in out
    assert "SAGEMAKER_ROLE_ARN" in out and "IMAGE_URI" in out


def test_deploy_help_shows_each_serving_knob_with_its_variable(capsys):
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag, env in (
        ("--workers", "MODEL_SERVER_WORKERS"),
        ("--server-timeout", "MODEL_SERVER_TIMEOUT"),
        ("--max-batch-size", "MODEL_SERVER_MAX_BATCH_SIZE"),
        ("--max-batch-delay-ms", "MODEL_SERVER_MAX_BATCH_DELAY_MS"),
        ("--precision", "MODEL_SERVER_PRECISION"),
    ):
        assert flag in out and f"sets {env}" in out


def test_repeated_flags_collect():
    args = build_parser().parse_args(
        ["train", "--train", "s3://b-1/t/", "--hp", "epochs=3", "--hp", "pooling=cls"]
    )
    assert args.hp == ["epochs=3", "pooling=cls"] and args.wait and args.logs
    args = build_parser().parse_args(
        ["deploy", "--model-data", "s3://b-1/m.tar.gz", "--workers", "2", "--env", "A=1"]
    )
    assert (args.knob_workers, args.env) == ("2", ["A=1"])


def test_deploy_needs_exactly_one_model_source(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["deploy", "--training-job", "j", "--model-data", "s3://b-1/m.tar.gz"]
        )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--train", "s3://b-1/t/", "--hp", "epochs=zero"], "epochs='zero' is not valid"),
        (["train", "--train", "s3://b-1/t/", "--hp", "epoch=3"], "unknown hyperparameter 'epoch'"),
        (["train", "--train", "s3://b-1/t/", "--spot"], "needs a checkpoint S3 URI"),
        (["train", "--train", "b-1/t/"], "is not an s3://bucket/prefix URI"),
        (
            ["deploy", "--training-job", "j", "--precision", "fp8"],
            "MODEL_SERVER_PRECISION='fp8' is not valid",
        ),
        (["deploy", "--training-job", "j", "--mode", "async"], "async output: an s3://"),
        (
            [
                "transform",
                "--model-name",
                "m",
                "--input",
                "s3://b-1/i/",
                "--output",
                "s3://b-1/o/",
                "--max-payload-mb",
                "101",
            ],
            "expected 1 to 100",
        ),
    ],
)
def test_bad_launches_exit_2_before_any_request(offline_aws, capsys, argv, message):
    assert main([*argv, *WHERE]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_role_exits_2_naming_the_variable(offline_aws, capsys):
    assert main(["train", "--train", "s3://b-1/t/", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert "no IAM role" in err and "SAGEMAKER_ROLE_ARN" in err and "no image URI" in err


def test_metrics_command_prints_the_definitions(capsys):
    assert main(["metrics"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics.metric_definitions()
    assert main(["metrics", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.strip() == metrics.as_markdown()


# --- plans: every default resolved, nothing sent ---------------------------------------------
def test_training_plan_defaults():
    plan = launcher.plan_training(train="s3://data-1/train/", **TARGET)
    assert plan.channels == {"train": "s3://data-1/train/"}
    assert plan.output_s3_uri == "s3://data-1/text-classifier"
    assert plan.tensorboard_s3_uri == "s3://data-1/text-classifier/tensorboard"
    assert plan.checkpoint_local_path == "/opt/ml/checkpoints"
    assert plan.tensorboard_local_path == "/opt/ml/output/tensorboard"
    assert (plan.instance_type, plan.instance_count, plan.volume_size_gb) == ("ml.g5.xlarge", 1, 50)
    assert (plan.spot, plan.max_wait_seconds, plan.checkpoint_s3_uri) == (False, None, None)
    assert plan.metric_definitions == metrics.metric_definitions("text_classifier")
    assert plan.base_job_name == "text-classifier"


def test_a_jobs_default_name_is_its_plugins():
    plan = launcher.plan_training(
        train="s3://data-1/train/", hyperparameters={"model": "tabular"}, **TARGET
    )
    assert plan.base_job_name == "tabular" and plan.output_s3_uri == "s3://data-1/tabular"
    assert launcher.jobs.default_base_job_name("my_pkg.my_model") == "my-pkg-my-model"
    assert launcher.jobs.default_base_job_name("_" + "x" * 80) == "x" * 48  # 63 less a time
    named = launcher.plan_training(
        train="s3://data-1/train/",
        hyperparameters={"model": "tabular"},
        base_job_name="mine",
        **TARGET,
    )
    assert named.base_job_name == "mine"


def test_training_plan_container_paths_ignore_a_local_base_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    plan = launcher.plan_training(train="s3://data-1/train/", **TARGET)
    assert plan.checkpoint_local_path == "/opt/ml/checkpoints"


def test_spot_training_plan():
    plan = launcher.plan_training(
        train="s3://data-1/train/",
        spot=True,
        checkpoint_s3_uri="s3://data-1/ckpt/run-1/",
        max_run_seconds=3600,
        **TARGET,
    )
    assert (plan.spot, plan.max_wait_seconds) == (True, 7200)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(spot=True, checkpoint_s3_uri="s3://d-1/c/", max_run_seconds=100, max_wait_seconds=50),
         "must be at least max run"),
        (dict(max_wait_seconds=50), "only applies to managed spot"),
        (dict(base_job_name="x" * 49), "at most 48 characters"),
        (dict(instance_count=0), "instance count 0"),
        (dict(validation="s3:/d-1/v/"), "validation channel"),
    ],
)  # fmt: skip
def test_training_plan_refusals(overrides, message):
    with pytest.raises(LauncherError, match=message):
        launcher.plan_training(train="s3://data-1/train/", **TARGET, **overrides)


def test_deployment_plan_modes():
    realtime = launcher.plan_deployment(training_job="j", **TARGET)
    assert realtime.name.startswith("text-classifier-")
    assert (realtime.mode, realtime.instance_type, realtime.instance_count) == (
        "realtime",
        "ml.g5.xlarge",
        1,
    )
    serverless = launcher.plan_deployment(
        model_data="s3://m-1/model.tar.gz", mode="serverless", serverless_memory_mb=2048, **TARGET
    )
    assert (serverless.instance_type, serverless.serverless_memory_mb) == (None, 2048)
    with pytest.raises(LauncherError, match="serverless memory 1000 MB"):
        launcher.plan_deployment(
            training_job="j", mode="serverless", serverless_memory_mb=1000, **TARGET
        )
    with pytest.raises(LauncherError, match="only apply to mode 'async'"):
        launcher.plan_deployment(training_job="j", async_output_s3_uri="s3://o-1/", **TARGET)
    with pytest.raises(LauncherError, match="exactly one of"):
        launcher.plan_deployment(**TARGET)
    with pytest.raises(LauncherError, match="mode 'batch'"):
        launcher.plan_deployment(training_job="j", mode="batch", **TARGET)


def test_transform_plan():
    plan = launcher.plan_transform(
        model_name="m",
        input_s3_uri="s3://b-1/in/",
        output_s3_uri="s3://b-1/out/",
        content_type="text/csv",
        max_concurrent_transforms=2,
        max_payload_mb=50,
        region="us-east-1",
    )
    assert (plan.accept, plan.limits.max_concurrent_transforms, plan.limits.max_payload_in_mb) == (
        "text/csv",
        2,
        50,
    )
    assert (plan.split_type, plan.assemble_with, plan.limits.api_batch_strategy) == (
        "Line",
        "Line",
        "MultiRecord",
    )
    # Lines in, so lines out: one answer line per input line.
    with pytest.raises(LauncherError, match="answered line for line"):
        launcher.plan_transform(
            model_name="m",
            input_s3_uri="s3://b-1/in/",
            output_s3_uri="s3://b-1/out/",
            region="us-east-1",
            accept="application/json",
        )
    many = {f"VAR_{i}": "x" for i in range(17)}
    with pytest.raises(LauncherError, match="at most 16"):
        launcher.plan_transform(
            model_name="m",
            input_s3_uri="s3://b-1/in/",
            output_s3_uri="s3://b-1/out/",
            env=many,
            region="us-east-1",
        )


def test_launch_functions_show_their_plan_arguments():
    import inspect

    params = inspect.signature(launcher.train).parameters
    assert {"train", "hyperparameters", "spot", "wait", "timeout_seconds"} <= set(params)
    assert "launch" not in params


# --- help lists a plug-in kept outside the repository ------------------------------------------
def test_train_and_tune_help_list_the_plugin_named_with_hp(png_plugin, capsys):
    from tests import outside_plugin

    name = png_plugin
    for command in ("train", "tune"):
        with pytest.raises(SystemExit):
            main([command, "--hp", f"model={name}", "--help"])
        out = capsys.readouterr().out
        assert f"model={name}:\n  {outside_plugin.HYPERPARAMETER}" in out
        assert "width of the first convolution" in out
        assert "model=text_classifier:" in out  # the shipped ones stay listed
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert outside_plugin.HYPERPARAMETER not in out
        assert f"python -m launcher {command} --hp model=my_package --help" in out
    with pytest.raises(SystemExit):
        main(["train", "--help", f"--hp=model={name}"])
    assert outside_plugin.HYPERPARAMETER in capsys.readouterr().out


def test_help_says_why_a_named_plugin_cannot_be_listed(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--hp", "model=no_such_plugin_anywhere", "--help"])
    out = capsys.readouterr().out
    assert "model=no_such_plugin_anywhere: cannot be listed:" in out and "no such plug-in" in out
