"""The benchmark's command line: configurations and the side-by-side table."""

import argparse

import pytest

from benchmarks import eval_defaults


def test_parse_config():
    assert eval_defaults.parse_config("defaults:") == ("defaults", {})
    assert eval_defaults.parse_config("x:epochs=3, pooling = cls") == (
        "x",
        {"epochs": "3", "pooling": "cls"},
    )
    with pytest.raises(argparse.ArgumentTypeError, match="not k=v"):
        eval_defaults.parse_config("x:epochs")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME:k=v"):
        eval_defaults.parse_config(":epochs=3")


def test_plain_keeps_epochs_patience_and_batch_of_the_defaults():
    from sagemaker_platform.config import TrainSettings
    from sagemaker_platform.hyperparameters import parse

    configs = eval_defaults.default_configs()
    assert configs["defaults"] == {}
    job = parse(configs["plain"])
    plain, defaults = job.settings, TrainSettings()
    assert (plain.epochs, plain.early_stopping_patience, plain.batch_size) == (
        defaults.epochs,
        defaults.early_stopping_patience,
        defaults.batch_size,
    )
    assert not job.hp.class_weighting and job.hp.pooling == "cls" and job.hp.max_length == 128


def test_table_and_ratio():
    row = {
        "name": "defaults",
        "test_macro_f1": 0.8,
        "test_accuracy": 0.85,
        "val_macro_f1": 0.7,
        "train_seconds": 200.0,
        "wall_seconds": 220.0,
        "cpu_seconds": 400.0,
        "epochs_run": 5,
        "best_epoch": 3,
    }
    other = {**row, "name": "plain", "test_macro_f1": 0.4, "train_seconds": 100.0}
    text = eval_defaults.table([row, other])
    assert "defaults" in text.splitlines()[2] and "0.800" in text
    line = eval_defaults.ratio_line(row, other)
    assert "macro-F1 0.800 vs 0.400 (x2.00, +0.400)" in line and "training time x2.00" in line
