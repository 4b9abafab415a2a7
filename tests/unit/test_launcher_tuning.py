"""Tuning ranges and objectives, checked offline against the plug-in's own settings."""

from __future__ import annotations

import pytest

from launcher import LauncherError, metrics, plan_tuning
from launcher.cli import build_parser
from launcher.ranges import check_ranges, parse_range_flags

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/text-classifier:latest"
TRAIN = "s3://bucket/data/train/"


def plan(offline=True, **overrides):
    args = dict(
        train=TRAIN,
        ranges={"learning_rate": "1e-5:1e-3:log"},
        objective="val_f1",
        role=ROLE,
        image_uri=IMAGE,
        region="us-east-1",
    )
    return plan_tuning(**{**args, **overrides})


def test_the_three_kinds_of_range_become_parameter_ranges():
    ranges = check_ranges(
        {
            "learning_rate": "1e-5:1e-3:log",
            "batch_size": "16,32",
            "pooling": "mean,cls",
            "max_length": "64:256",
            "class_weighting": [True, False],
        },
        {},
        "text_classifier",
    )
    api = {r.name: r.as_api() for r in ranges}
    assert [r.kind for r in ranges] == [
        "Continuous", "Categorical", "Categorical", "Integer", "Categorical"
    ]  # fmt: skip
    assert api["learning_rate"] == {
        "Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.001",
        "ScalingType": "Logarithmic",
    }  # fmt: skip
    assert api["batch_size"] == {"Name": "batch_size", "Values": ["16", "32"]}
    assert api["max_length"]["ScalingType"] == "Auto"
    assert api["class_weighting"]["Values"] == ["true", "false"]


@pytest.mark.parametrize(
    "ranges,static,expected",
    [
        (
            {"learning_rte": "1e-5:1e-3"},
            {},
            "range 'learning_rte': no such hyperparameter for "
            "model=text_classifier; known: .*learning_rate",
        ),
        ({"learning_rate": "1e-3:1e-5"}, {}, "the minimum must be below the maximum"),
        ({"learning_rate": "0:1e-3:log"}, {}, "a log scale needs a minimum above 0"),
        (
            {"learning_rate": "1e-5:2"},
            {},
            r"learning_rate='2' is out of range: expected a "
            r"number from 0.0 to 1.0",
        ),
        ({"batch_size": "16:0.5"}, {}, "batch_size='0.5' is not valid: expected an integer"),
        ({"batch_size": "16:64:reverse-log"}, {}, "reverse-log scale takes a float range"),
        ({"dropout": "0.1:0.5:squared"}, {}, "scale 'squared'; expected one of auto"),
        ({"pooling": "mean,max"}, {}, "pooling='max' is not valid: expected one of mean, cls"),
        ({"pooling": "mean"}, {}, r"one value \(mean\); give two or more"),
        ({"pooling": "mean,mean"}, {}, "a value is listed twice"),
        ({"pooling": "mean,cls"}, {"pooling": "cls"}, "pooling is both tuned"),
        ({"model": "tabular,text_classifier"}, {}, "the plug-in cannot be tuned"),
        ({}, {}, "nothing to tune"),
    ],
)
def test_a_bad_range_is_one_line_naming_it(ranges, static, expected):
    with pytest.raises(LauncherError, match=expected) as err:
        check_ranges(ranges, static, "text_classifier")
    assert "\n" not in str(err.value)


def test_ranges_follow_the_chosen_plugin():
    (hidden,) = check_ranges({"task": "classification,regression"}, {}, "tabular")
    assert hidden.values == ("classification", "regression")
    with pytest.raises(LauncherError, match="no such hyperparameter for model=tabular"):
        check_ranges({"pooling": "mean,cls"}, {}, "tabular")


def test_objectives_are_the_metrics_the_job_logs(offline_aws):
    assert "val_f1" in metrics.objective_names("text_classifier")
    assert "epoch" not in metrics.objective_names()
    with pytest.raises(LauncherError, match="objective 'val_rmse' is not a metric "
                       "model=text_classifier logs; one of: train_loss, "):  # fmt: skip
        plan(objective="val_rmse")
    assert plan(objective="val_rmse", hyperparameters={"model": "tabular"},
                ranges={"dropout": "0:0.5"}).direction == "Minimize"  # fmt: skip
    assert plan(objective="val_loss").direction == "Minimize"
    assert plan(objective="val_f1").direction == "Maximize"
    assert plan(objective="val_loss", direction="Maximize").direction == "Maximize"


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"strategy": "Hyperband", "early_stopping": "Auto"}, "early stopping must be Off"),
        ({"strategy": "Hyperband", "ranges": {"epochs": "1:5"}}, "fix epochs"),
        ({"strategy": "Grid"}, "Grid searches listed values only: give learning_rate"),
        ({"strategy": "Annealing"}, "strategy 'Annealing': expected one of Bayesian"),
        ({"max_jobs": 2, "max_parallel_jobs": 3}, r"max parallel jobs \(3\) is more than"),
        ({"max_jobs": 0}, "max jobs 0: expected a whole number >= 1"),
        ({"warm_start_from": ["a"] * 6}, "at most 5"),
        ({"warm_start_type": "Identical"}, "expected IdenticalDataAndAlgorithm or Transfer"),
        ({"name": "x" * 33}, "at most 32 characters"),
        ({"keep_alive_seconds": 60}, "warm pools"),
        ({"hyperparameters": {"epochs": 0}}, "epochs='0' is out of range"),
    ],
)
def test_bad_tuning_settings_are_refused_before_any_request(offline_aws, overrides, expected):
    with pytest.raises(LauncherError, match=expected):
        plan(**overrides)


def test_hyperband_runs_up_to_the_fixed_epochs_and_grid_tries_every_combination(offline_aws):
    hyperband = plan(strategy="Hyperband", hyperparameters={"epochs": 8}).request()
    config = hyperband["HyperParameterTuningJobConfig"]
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 8}
    }
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    grid = plan(strategy="Grid", ranges={"pooling": "mean,cls", "batch_size": "16,32"}).request()
    assert "MaxNumberOfTrainingJobs" not in grid["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert plan().max_jobs == 10


def test_default_name_fits_the_32_characters_of_a_tuning_job(offline_aws):
    name = plan(base_job_name="a-rather-long-base-job-name").name
    assert len(name) <= 32 and name.startswith("a-rather-long-base")


def test_cli_ranges_parse_and_repeat():
    assert parse_range_flags(["learning_rate=1e-5:1e-3:log", "pooling=mean,cls"]) == {
        "learning_rate": "1e-5:1e-3:log",
        "pooling": "mean,cls",
    }
    for bad in (["learning_rate"], ["=1:2"], ["pooling=mean,cls", "pooling=cls,mean"]):
        with pytest.raises(LauncherError):
            parse_range_flags(bad)
    args = build_parser().parse_args(
        ["tune", "--train", TRAIN, "--range", "dropout=0:0.3", "--objective", "val_f1"]
    )
    assert args.ranges == ["dropout=0:0.3"] and args.strategy == "Bayesian"


def test_trials_take_the_jobs_sharding_and_input_mode(offline_aws):
    from launcher.tuning import training_definition

    tuned = plan(validation="s3://bucket/data/val/", distribution="sharded", input_mode="FastFile")
    definition = training_definition(tuned.training)
    assert definition["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"
    by_channel = {
        c["ChannelName"]: (
            c["DataSource"]["S3DataSource"]["S3DataDistributionType"],
            c["InputMode"],
        )
        for c in definition["InputDataConfig"]
    }
    assert by_channel == {
        "train": ("ShardedByS3Key", "FastFile"),
        "validation": ("FullyReplicated", "FastFile"),
    }
