"""benchmarks/eval_defaults.py end to end on a small fortunes split with the tiny backbone."""

import json
import subprocess
import sys

import pytest

from benchmarks import real_data
from tests.helpers import ROOT, subprocess_env

pytestmark = pytest.mark.skipif(
    not (real_data.FORTUNES_DIR / "computers").is_file(),
    reason=f"needs Debian's fortunes package: {real_data.APT_HINT}",
)


def test_trains_scores_and_compares_two_configs(tmp_path, tiny_backbone):
    common = f"backbone={tiny_backbone},epochs=1,max_length=32"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "eval_defaults.py"),
            "--work",
            str(tmp_path),
            "--train=60",
            "--validation=24",
            "--test=30",
            "--config",
            f"a:{common}",
            "--config",
            f"b:{common},class_weighting=false,pooling=cls",
        ],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a vs b: macro-F1" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in results["results"]] == ["a", "b"]
    rows = results["data"]["rows"]  # a few more where the rarest class gets its minimum of 2
    assert rows["train"] == 60 and 24 <= rows["validation"] <= 28 and 30 <= rows["test"] <= 34
    for r in results["results"]:
        assert 0.0 <= r["test_macro_f1"] <= 1.0 and r["epochs_run"] == 1
        assert set(r["test_f1_per_class"]) == set(real_data.DEFAULT_CATEGORIES)
    assert (tmp_path / "runs" / "b" / "model" / "model.ckpt").is_file()
    assert not (tmp_path / "runs" / "b" / "checkpoints").exists()


def test_unknown_hyperparameter_is_refused_before_any_training(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_defaults.py"), "--config", "x:epoch=3"],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown hyperparameter 'epoch'" in done.stderr
