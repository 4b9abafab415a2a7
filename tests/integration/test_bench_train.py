"""benchmarks/bench_train.py --compare-precision end to end at a tiny size: fp32 against
bf16-mixed through `model/train`, speed, a sample job and (with Debian's fortunes) the
real-text set, in one run."""

import json
import subprocess
import sys

from benchmarks import real_data
from tests.helpers import ROOT, subprocess_env


def test_compare_precision_runs_each_part_in_both_precisions(tmp_path, tiny_backbone):
    real_text = (real_data.FORTUNES_DIR / "computers").is_file()
    tiny = f"--real-text-params=backbone={tiny_backbone},epochs=1,max_length=32"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_train.py"),
            "--compare-precision",
            f"--backbone={tiny_backbone}",
            "--rows=32",
            "--max-length=32",
            "--repeats=1",
            "--threads=1",
            "--plugins=text_classifier",
            "--sample-rows=32",
            f"--json={tmp_path / 'figures.json'}",
            *(["--real-text", "--real-text-rows=60,24,30", tiny] if real_text else []),
        ],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "speed, torch threads 1:" in done.stdout
    figures = json.loads((tmp_path / "figures.json").read_text())
    speed = figures["speed_threads_1"]
    assert set(speed["ratio"]) == {"wall", "cpu"} and speed["ratio"]["cpu"] > 0
    sample = figures["sample_text_classifier"]
    assert [sample[p]["precision"] for p in ("fp32", "bf16")] == ["32-true", "bf16-mixed"]
    assert all(0.0 <= sample[p]["val"]["val_f1"] <= 1.0 for p in ("fp32", "bf16"))
    if real_text:
        runs = figures["real_text"]["results"]
        assert [r["precision"] for r in runs["fp32"] + runs["bf16"]] == ["32-true", "bf16-mixed"]
        assert "quality HOLDS" in done.stdout or "quality DOES NOT HOLD" in done.stdout


def test_a_list_of_threads_is_refused_outside_the_precision_comparison(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--threads=1,2"],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--threads: one value" in done.stderr
