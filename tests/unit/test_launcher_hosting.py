"""Issue 14's launch options, checked before any request: autoscaling, data capture, the
mode variable and batch transform joins (what reaches AWS: tests/integration/test_launcher.py)."""

import pytest

import launcher
from launcher import autoscaling, params
from launcher.cli import build_parser, main
from launcher.settings import LauncherError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
WHERE = ["--region", "us-east-1", "--role", ROLE, "--image-uri", IMAGE]
TARGET = dict(region="us-east-1", role=ROLE, image_uri=IMAGE)
DEPLOY = ["deploy", "--training-job", "j"]
ASYNC = [*DEPLOY, "--mode", "async", "--async-output-s3-uri", "s3://b-1/o/"]
SCALE = ["--min-instances", "1", "--max-instances", "4"]
TRANSFORM = ["transform", "--model-name", "m", "--input", "s3://b-1/i/", "--output", "s3://b-1/o/"]


@pytest.mark.parametrize(
    "argv,message",
    [
        ([*DEPLOY, "--min-instances", "1"], "needs both min and max instances"),
        ([*DEPLOY, "--target-invocations-per-instance", "10"], "needs both min and max"),
        ([*DEPLOY, "--min-instances", "3", "--max-instances", "2",
          "--target-invocations-per-instance", "10"], "min instances 3 is above max instances 2"),
        ([*DEPLOY, "--min-instances", "0", "--max-instances", "2",
          "--target-invocations-per-instance", "10"], "only an async endpoint can scale to zero"),
        ([*DEPLOY, "--min-instances", "-1", "--max-instances", "2",
          "--target-invocations-per-instance", "10"], "min instances -1: expected a whole number"),
        ([*DEPLOY, "--min-instances", "0", "--max-instances", "0", "--mode", "async",
          "--async-output-s3-uri", "s3://b-1/o/", "--target-backlog-per-instance", "5"],
         "max instances 0: expected at least 1"),
        ([*DEPLOY, *SCALE], "needs --target-invocations-per-instance"),
        ([*DEPLOY, *SCALE, "--target-invocations-per-instance", "0"],
         "target invocations per instance 0.0: expected a number > 0"),
        ([*DEPLOY, *SCALE, "--target-backlog-per-instance", "5"],
         "a realtime endpoint scales on --target-invocations-per-instance"),
        ([*ASYNC, *SCALE], "needs --target-backlog-per-instance"),
        ([*ASYNC, *SCALE, "--target-invocations-per-instance", "10"],
         "an async endpoint scales on its queue"),
        ([*DEPLOY, "--instance-count", "5", *SCALE, "--target-invocations-per-instance", "9"],
         "instance count 5 is outside the autoscaling range 1-4"),
        ([*DEPLOY, *SCALE, "--target-invocations-per-instance", "9", "--scale-in-cooldown", "-5"],
         "scale-in cooldown -5"),
        ([*DEPLOY, "--mode", "serverless", *SCALE, "--target-invocations-per-instance", "9"],
         "a serverless endpoint scales by itself"),
        ([*DEPLOY, "--capture-percent", "50"], "data capture needs an S3 URI"),
        ([*DEPLOY, "--capture-s3-uri", "s3://b-1/c/", "--capture-percent", "101"],
         "capture percent 101: expected a whole number 0 to 100"),
        ([*DEPLOY, "--capture-s3-uri", "bucket/c/"], "data capture: 'bucket/c/' is not an s3://"),
        ([*DEPLOY, "--capture-s3-uri", "s3://b-1/c/", "--mode", "serverless"],
         "does not capture serverless endpoints"),
        ([*DEPLOY, "--capture-s3-uri", "s3://b-1/c/", "--capture-content-types", "text/plain"],
         "only CSV and JSON types are listed"),
        ([*DEPLOY, "--env", "MODEL_SERVER_MODE=async"], "set from the endpoint's mode"),
        ([*TRANSFORM, "--input-filter", "[1:]"], "a JSONPath starts with `$`"),
        ([*TRANSFORM, "--output-filter", ""], "an empty JSONPath"),
        ([*TRANSFORM, "--output-filter", "$[0,-1"], "unbalanced brackets"),
        ([*TRANSFORM, "--output-filter", "$['id','SageMakerOutput]"], "unbalanced brackets"),
        ([*TRANSFORM, "--input-filter", "$" + "[1]" * 21], "SageMaker takes at most 63"),
        ([*TRANSFORM, "--join-source", "input", "--content-type", "text/csv", "--accept",
          "application/jsonlines"], "the answers must be text/csv like the input"),
    ],
)  # fmt: skip
def test_bad_hosting_options_exit_2_before_any_request(offline_aws, capsys, argv, message):
    assert main([*argv, *WHERE]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line


def test_deployment_plan_carries_autoscaling():
    plan = launcher.plan_deployment(
        training_job="j",
        mode="async",
        async_output_s3_uri="s3://b-1/o/",
        min_instances=0,
        max_instances=3,
        target_backlog_per_instance=5,
        scale_in_cooldown=900,
        **TARGET,
    )
    assert plan.scaling == autoscaling.ScalingPlan(
        min_instances=0,
        max_instances=3,
        metric="ApproximateBacklogSizePerInstance",
        target=5.0,
        scale_in_cooldown=900,
        scale_out_cooldown=300,
    )
    assert plan.scaling.wakes_from_zero
    assert plan.environment == {"MODEL_SERVER_MODE": "async"}
    realtime = launcher.plan_deployment(
        training_job="j", min_instances=2, max_instances=2, instance_count=2,
        target_invocations_per_instance=600, **TARGET,
    )  # fmt: skip
    assert (realtime.scaling.metric, realtime.scaling.wakes_from_zero) == (
        "SageMakerVariantInvocationsPerInstance",
        False,
    )
    assert launcher.plan_deployment(training_job="j", **TARGET).scaling is None


def test_deployment_plan_carries_data_capture():
    plan = launcher.plan_deployment(
        training_job="j",
        capture_s3_uri="s3://b-1/capture/",
        capture_percent=0,  # capture off for now, switchable later without a new config
        capture_content_types=["Text/CSV", "application/json", "application/json"],
        **TARGET,
    )
    assert (plan.capture.percent, plan.capture.csv_types, plan.capture.json_types) == (
        0,
        ("text/csv",),
        ("application/json",),
    )
    assert launcher.plan_deployment(training_job="j", **TARGET).capture is None


def test_the_mode_variable_is_no_serving_flag():
    # `--mode` is the deploy's own; the variable it sets must not become a knob flag too.
    assert params.MODE_ENV == "MODEL_SERVER_MODE"
    assert params.MODE_ENV not in params.serving_knobs().values()
    args = build_parser().parse_args([*DEPLOY, "--mode", "serverless"])
    assert args.mode == "serverless"


def test_transform_plan_joins():
    plan = launcher.plan_transform(
        model_name="m",
        input_s3_uri="s3://b-1/in/",
        output_s3_uri="s3://b-1/out/",
        content_type="text/csv",
        input_filter="$[1:]",
        join_source="input",
        output_filter="$[0,2:]",
        region="us-east-1",
    )
    assert (plan.input_filter, plan.join_source, plan.output_filter) == (
        "$[1:]",
        "Input",
        "$[0,2:]",
    )
    plain = launcher.plan_transform(
        model_name="m",
        input_s3_uri="s3://b-1/in/",
        output_s3_uri="s3://b-1/out/",
        region="us-east-1",
    )
    assert (plain.input_filter, plain.join_source, plain.output_filter) == (None, None, None)
    with pytest.raises(LauncherError, match="join source 'left'"):
        launcher.plan_transform(
            model_name="m",
            input_s3_uri="s3://b-1/in/",
            output_s3_uri="s3://b-1/out/",
            join_source="left",
            region="us-east-1",
        )
    args = build_parser().parse_args([*TRANSFORM, "--join-source", "input"])
    assert args.join_source == "Input"


def test_help_lists_the_autoscale_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "    autoscale" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["autoscale", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--target-backlog-per-instance" in out and "--scale-in-cooldown" in out
