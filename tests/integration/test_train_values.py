"""Training on values that overflow or are not finite, with the real
`train` entry point: each job fails with a one-line reason, or trains as it should.

Before: regression labels of ±1e308 trained to val_rmse=inf and exited 0, a model whose
metric went NaN trained on (early stopping merely stopped) and exited 0, and a class
named `$\\foo{$` trained fully and then failed drawing the confusion matrix.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests import helpers

ROOT = Path(__file__).resolve().parents[2]


def tabular_job(base: Path, change, **hp) -> None:
    """The tabular sample job (train and validation channels), `change`d."""
    helpers.write_sample_job(
        base, {**helpers.test_hyperparameters("tabular"), **hp}, model="tabular"
    )
    path = base / "input" / "data" / "train" / "houses.csv"
    frame = pd.read_csv(path)
    change(frame)
    frame.to_csv(path, index=False)


def test_regression_labels_that_overflow_fail_before_training(base_dir, run_train):
    def plant(frame):
        frame.loc[4, "price"] = 1e308
        frame.loc[9, "price"] = -1e308

    tabular_job(base_dir, plant, label_column="price")
    result = run_train(base_dir)
    assert result.returncode == 1, result.stdout[-3000:]
    reason = helpers.failure_reason(base_dir)
    assert reason.startswith("label column 'price' holds values too large to train on: "), reason
    assert "houses.csv (data row 5)" in reason or "houses.csv (data row 10)" in reason, reason
    assert "fit model=" not in result.stdout  # refused before torch was paid for


def test_a_class_named_as_math_text_trains_and_draws_its_confusion_matrix(base_dir, run_train):
    def rename(frame):
        frame["label"] = frame["label"].replace({"budget": "$\\foo{$", "premium": "$x$"})

    tabular_job(base_dir, rename)
    val = base_dir / "input" / "data" / "validation" / "houses.csv"
    frame = pd.read_csv(val)
    rename(frame)
    frame.to_csv(val, index=False)
    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = base_dir / "output" / "data"
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert "$\\foo{$" in json.loads((out / "metrics.json").read_text())["labels"]


def test_a_metric_that_is_not_finite_fails_the_job_in_one_line(tmp_path):
    """The platform's check, for every plug-in: the skeleton `make new-model` writes,
    with a learning rate that makes its SGD diverge, and early stopping off (which would
    otherwise stop on a NaN metric, and exit 0)."""
    dest = tmp_path / "mine"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "new_model.py"), "divergent", "--dest", str(dest)],
        check=True,
        capture_output=True,
    )
    base = tmp_path / "opt_ml"
    sys.path.insert(0, str(dest))
    try:
        hp = {"epochs": "10", "learning_rate": "10", "early_stopping_patience": "0"}
        helpers.write_sample_job(base, hp, model="divergent")
    finally:
        sys.path.remove(str(dest))
    result = helpers.run_entry("train", base, env={"PYTHONPATH": str(dest)})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith("training diverged: val_mse is "), reason
    assert "not a finite number" in reason, reason
    assert not (base / "model" / "model.ckpt").exists()
