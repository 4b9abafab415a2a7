"""Typed values to SageMaker's strings, checked by the container's own parsers."""

from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.params import (
    hyperparameter_strings,
    parse_pairs,
    serving_environment,
    serving_knobs,
    transform_limits,
)
from launcher.settings import LauncherError
from sagemaker_platform.config import ServeConfig, serve_config_from_env
from sagemaker_platform.hyperparameters import parse


def test_hyperparameters_become_the_strings_training_parses():
    strings = hyperparameter_strings(
        {"epochs": 3, "learning_rate": 5e-5, "class_weighting": False, "pooling": "cls"}
    )
    assert strings == {
        "class_weighting": "false",
        "epochs": "3",
        "learning_rate": "5e-05",
        "pooling": "cls",
    }
    job = parse(strings)
    assert (job.settings.epochs, job.hp.learning_rate, job.hp.class_weighting) == (3, 5e-5, False)


def test_another_plugins_hyperparameters_are_checked_against_that_plugin():
    with pytest.raises(LauncherError, match="unknown hyperparameter 'pooling' for model=tabular"):
        hyperparameter_strings({"model": "tabular", "pooling": "cls"})


@given(
    epochs=st.integers(1, 10_000),
    lr=st.floats(0.0, 1.0, allow_nan=False),
    weighting=st.booleans(),
    pooling=st.sampled_from(["mean", "cls"]),
)
def test_typed_values_survive_the_round_trip(epochs, lr, weighting, pooling):
    values = {
        "epochs": epochs,
        "learning_rate": lr,
        "class_weighting": weighting,
        "pooling": pooling,
    }
    strings = hyperparameter_strings(values)
    assert all(isinstance(v, str) for v in strings.values())
    job = parse(strings)
    assert {**asdict(job.settings), **asdict(job.hp)}.items() >= values.items()


@pytest.mark.parametrize(
    "values,message",
    [
        ({"epoch": 3}, "unknown hyperparameter 'epoch'"),
        ({"epochs": 0}, "epochs='0' is out of range"),
        ({"pooling": "max"}, "expected one of mean, cls"),
        ({"epochs": [1, 2]}, "a list cannot be sent"),
    ],
)
def test_bad_hyperparameters_fail_here(values, message):
    with pytest.raises(LauncherError, match=message):
        hyperparameter_strings(values)


def test_cli_pairs():
    assert parse_pairs(["epochs=3", "backbone=a=b", "epochs=4"], "--hp") == {
        "epochs": "4",
        "backbone": "a=b",
    }
    with pytest.raises(LauncherError, match="expected KEY=VALUE"):
        parse_pairs(["epochs"], "--hp")


def test_serving_knobs_are_the_user_settable_fields():
    knobs = serving_knobs()
    assert knobs["workers"] == "MODEL_SERVER_WORKERS"
    assert knobs["max_batch_delay_ms"] == "MODEL_SERVER_MAX_BATCH_DELAY_MS"
    assert knobs["max_payload_mb"] == "SAGEMAKER_MAX_PAYLOAD_IN_MB"
    # SageMaker itself sets the port and the batch transform variables.
    assert not {"port", "batch_strategy", "max_concurrent_transforms"} & set(knobs)


def test_serving_environment_is_what_the_server_will_parse():
    env = serving_environment(
        {"workers": 2, "max_batch_delay_ms": 1.5, "precision": "bf16"}, {"LOG_LEVEL": "DEBUG"}
    )
    assert env == {
        "LOG_LEVEL": "DEBUG",
        "MODEL_SERVER_MAX_BATCH_DELAY_MS": "1.5",
        "MODEL_SERVER_PRECISION": "bf16",
        "MODEL_SERVER_WORKERS": "2",
    }
    cfg = serve_config_from_env(env)
    assert (cfg.workers, cfg.max_batch_delay_ms, cfg.precision) == (2, 1.5, "bf16")


@pytest.mark.parametrize(
    "knobs,env,message",
    [
        ({"precision": "fp8"}, {}, "MODEL_SERVER_PRECISION='fp8' is not valid"),
        ({"workers": -1}, {}, "MODEL_SERVER_WORKERS='-1' is out of range"),
        ({}, {"MODEL_SERVER_MAX_BATCH_SIZE": "lots"}, "MODEL_SERVER_MAX_BATCH_SIZE='lots'"),
        ({"batch_size": 8}, {}, "unknown serving setting 'batch_size'"),
        ({"workers": 1}, {"MODEL_SERVER_WORKERS": "2"}, "given twice"),
        ({}, {"SAGEMAKER_BIND_TO_PORT": "9000"}, "set by SageMaker itself"),
    ],
)
def test_bad_serving_settings_fail_here(knobs, env, message):
    with pytest.raises(LauncherError, match=message):
        serving_environment(knobs, env)


def test_transform_leaves_the_payload_variable_to_sagemaker():
    with pytest.raises(LauncherError, match="SAGEMAKER_MAX_PAYLOAD_IN_MB.*max payload option"):
        serving_environment({"max_payload_mb": 20}, sagemaker_sets=("SAGEMAKER_MAX_PAYLOAD_IN_MB",))


def test_transform_limits_follow_the_servers_workers():
    # A CPU instance: one worker per vCPU (at most 4), each taking one request at a time,
    # and the server's 6 MB.
    cpu = transform_limits("ml.m5.xlarge", {}, region="us-east-1")
    assert (cpu.max_concurrent_transforms, cpu.batch_strategy, cpu.max_payload_in_mb) == (
        4,
        "MULTI_RECORD",
        int(ServeConfig().max_payload_mb),
    )
    assert cpu.api_batch_strategy == "MultiRecord"
    # One worker per GPU.
    assert transform_limits("ml.p3.8xlarge", {}, region="us-east-1").max_concurrent_transforms == 4
    # Unless MODEL_SERVER_WORKERS says otherwise, or the caller does.
    workers = {"MODEL_SERVER_WORKERS": "3"}
    assert (
        transform_limits("ml.p3.8xlarge", workers, region="us-east-1").max_concurrent_transforms
        == 3
    )
    for instance, workers in [("ml.m5.large", 2), ("ml.t2.medium", 2), ("ml.c5.18xlarge", 4)]:
        assert transform_limits(instance, {}, region="us-east-1").max_concurrent_transforms == (
            workers
        )
    given_ = transform_limits("ml.m5.xlarge", {}, region="us-east-1", max_concurrent_transforms=5)
    assert given_.max_concurrent_transforms == 5


@pytest.mark.parametrize(
    "concurrent,payload,message",
    [
        (1, 101, "expected 1 to 100"),
        (1, 0, "expected 1 to 100"),
        (5, 30, "over SageMaker's 100 MB per instance"),
        (0, 6, "expected at least 1"),
        (1, 6.5, "whole number of MB"),
    ],
)
def test_transform_limits_respect_sagemakers_bounds(concurrent, payload, message):
    with pytest.raises(LauncherError, match=message):
        transform_limits(
            "ml.m5.xlarge",
            {},
            region="us-east-1",
            max_concurrent_transforms=concurrent,
            max_payload_mb=payload,
        )
