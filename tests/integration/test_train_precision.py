"""The `precision` hyperparameter through `model/train`: what the job ran is what its
`fit` line and metrics.json say, bf16-mixed trains on the CPU, and fp16 autocast, which
Lightning would silently replace on a CPU, is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests import helpers


def fit_line(stdout: str) -> dict[str, str]:
    (line,) = [line for line in stdout.splitlines() if " train: fit " in line]
    return dict(part.split("=", 1) for part in line.split(" train: fit ", 1)[1].split())


def metrics_of(base: Path) -> dict:
    return json.loads((base / "output" / "data" / "metrics.json").read_text())


def test_auto_trains_the_text_classifier_in_bf16_where_the_cpu_bf16_probe_pays(trained_model):
    stdout = (trained_model.parent / "train.stdout").read_text()  # hyperparameters: no precision
    (pays,) = helpers.bf16_pays(stdout)
    expected = "bf16-mixed" if pays == "yes" else "32-true"
    assert fit_line(stdout)["precision"] == expected
    assert metrics_of(trained_model)["precision"] == expected


def test_auto_keeps_the_tabular_mlp_in_fp32_on_any_cpu(tmp_path):
    base = helpers.write_sample_job(
        tmp_path, helpers.test_hyperparameters("tabular"), n_train=64, n_val=16, model="tabular"
    )
    done = helpers.run_entry("train", base, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert fit_line(done.stdout)["precision"] == "32-true"
    assert metrics_of(base)["precision"] == "32-true"


def test_bf16_mixed_asked_for_trains_on_the_cpu_and_says_so(tmp_path, tiny_backbone):
    params = {**helpers.test_hyperparameters("text_classifier", tiny_backbone), "epochs": "1"}
    base = helpers.write_sample_job(tmp_path, {**params, "precision": "bf16-mixed"}, 48, 16)
    done = helpers.run_entry("train", base, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert fit_line(done.stdout)["precision"] == "bf16-mixed"
    metrics = metrics_of(base)
    assert metrics["precision"] == "bf16-mixed" and 0.0 <= metrics["macro_f1"] <= 1.0
    # Where bf16 does not pay (no bf16 units, or measured slower): the job says so, once.
    (pays,) = helpers.bf16_pays(done.stdout)
    warned = [line for line in done.stdout.splitlines() if "no faster than fp32" in line]
    assert len(warned) == (0 if pays == "yes" else 1)


def test_fp16_autocast_on_a_cpu_is_refused_in_one_line(tmp_path, tiny_backbone):
    params = helpers.test_hyperparameters("text_classifier", tiny_backbone)
    base = helpers.write_sample_job(tmp_path, {**params, "precision": "16-mixed"}, 48, 16)
    done = helpers.run_entry("train", base, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith("precision=16-mixed needs a GPU") and "\n" not in reason.strip()
    assert " train: fit " not in done.stdout  # refused before the Trainer was built
