"""A hyperparameter tuning job's trials, as SageMaker runs them on this image.

Each trial gets the tuned values, the static ones, `_tuning_objective_metric` and the keys
an SDK adds (`sagemaker_*`) in its hyperparameters.json, and its own TRAINING_JOB_NAME;
the trials share one checkpoint_s3_uri, which SageMaker copies into checkpoints/.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import requests

from tests import helpers

# What the SageMaker Python SDK's tuner and the service put beside the tuned values.
SDK_KEYS = {
    "_tuning_objective_metric": "val_f1",
    "sagemaker_estimator_class_name": '"Estimator"',
    "sagemaker_estimator_module": '"sagemaker.estimator"',
    "sagemaker_container_log_level": "20",
}


def test_a_trials_hyperparameters_train_to_a_model_that_serves(base_dir, run_train, tiny_backbone):
    tuned = {"learning_rate": "0.0003", "pooling": '"cls"', "dropout": "0.2"}  # SDK: JSON
    helpers.write_sample_job(
        base_dir, {"backbone": str(tiny_backbone), "epochs": "1", "max_length": "32", **tuned}
    )
    hp_path = base_dir / "input" / "config" / "hyperparameters.json"
    hp_path.write_text(json.dumps({**json.loads(hp_path.read_text()), **SDK_KEYS}))

    result = run_train(base_dir, env={"TRAINING_JOB_NAME": "tune-1-001-abcdef12"})

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # The reserved keys on one line, never parsed as ours; ours as parsed.
    (line,) = [ln for ln in result.stdout.splitlines() if "sagemaker_hyperparameters " in ln]
    assert "_tuning_objective_metric=val_f1" in line and "sagemaker_estimator_module=" in line
    assert "pooling=cls" in result.stdout and "learning_rate=3.000e-04" in result.stdout
    # The objective is a name=value line the metric definitions catch.
    assert re.search(r"\bval_f1=[0-9.]+", result.stdout.split(" result ", 1)[1])
    with helpers.Server(base_dir, env={"MODEL_SERVER_PRECISION": "fp32"}) as server:
        server.wait_ready()
        response = requests.post(
            server.url + "/invocations", json={"text": "my parcel never arrived"}, timeout=60
        )
        assert response.status_code == 200, server.output()[-3000:]
        assert "label" in json.dumps(response.json())


def test_a_misspelt_key_in_a_trial_still_fails_fast(base_dir, run_train):
    helpers.write_hyperparameters(base_dir, {**SDK_KEYS, "learning_rte": "0.001"})
    result = run_train(base_dir, timeout=60, env={"TRAINING_JOB_NAME": "tune-1-002-abcdef12"})
    assert result.returncode == 1
    assert helpers.failure_reason(base_dir).startswith(
        "unknown hyperparameter 'learning_rte' for model=text_classifier; known: "
    )


def resumed_from(stdout: str) -> str | None:
    match = re.search(r"INFO train: resume checkpoint=(\S+)", stdout)
    return match.group(1) if match else None


def test_trials_sharing_a_checkpoint_uri_never_resume_each_other(tmp_path):
    """Two trials, one checkpoints/ (as SageMaker copies the shared URI onto each): each
    trains from scratch in its own folder; a restart of the first resumes its own."""
    hp = {**helpers.test_hyperparameters("tabular"), "epochs": "1"}
    trial = tmp_path / "trial" / "opt_ml"
    helpers.write_sample_job(trial, hp, model="tabular")
    hp_path = trial / "input" / "config" / "hyperparameters.json"
    hp_path.write_text(json.dumps({**json.loads(hp_path.read_text()), **SDK_KEYS}))
    checkpoints = trial / "checkpoints"

    def run(job_name: str, epochs: str = "1"):
        raw = json.loads(hp_path.read_text())
        hp_path.write_text(json.dumps({**raw, "epochs": epochs}))
        shutil.rmtree(trial / "model", ignore_errors=True)
        result = helpers.run_entry("train", trial, env={"TRAINING_JOB_NAME": job_name})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        return result.stdout

    # A checkpoint at the top, from an earlier plain job given the same URI.
    first = run("tune-1-001-aaaaaaaa")
    own = checkpoints / "tune-1-001-aaaaaaaa"
    assert resumed_from(first) is None
    assert f"checkpoints dir={own} trial=tune-1-001-aaaaaaaa" in first
    assert (own / "last.ckpt").is_file() and (own / "best.ckpt").is_file()
    assert not list(checkpoints.glob("*.ckpt")), "a trial writes nothing at the top"

    second = run("tune-1-002-bbbbbbbb")
    assert resumed_from(second) is None, "the second trial resumed the first's checkpoint"
    assert (checkpoints / "tune-1-002-bbbbbbbb" / "last.ckpt").is_file()

    # A spot restart of the first trial (same job name) resumes its own, and goes on.
    restart = run("tune-1-001-aaaaaaaa", epochs="2")
    assert resumed_from(restart) == str(own / "last.ckpt")
    assert re.findall(r"INFO train: epoch=(\d+) train_loss", restart) == ["2"]


def test_a_plain_job_still_resumes_the_top_level_and_a_trial_ignores_it(tmp_path):
    hp = {**helpers.test_hyperparameters("tabular"), "epochs": "1"}
    base = tmp_path / "opt_ml"
    helpers.write_sample_job(base, hp, model="tabular")
    env = {"TRAINING_JOB_NAME": "plain-job-1"}
    result = helpers.run_entry("train", base, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    top: Path = base / "checkpoints" / "last.ckpt"
    assert top.is_file(), "outside a tuning job checkpoints stay at the top, as before"

    again = helpers.run_entry("train", base, env={"TRAINING_JOB_NAME": "plain-job-2"})
    assert resumed_from(again.stdout) == str(top)  # a new job on the same URI resumes

    hp_path = base / "input" / "config" / "hyperparameters.json"
    hp_path.write_text(json.dumps({**json.loads(hp_path.read_text()), **SDK_KEYS}))
    trial = helpers.run_entry("train", base, env={"TRAINING_JOB_NAME": "tune-2-001-cccccccc"})
    assert trial.returncode == 0, trial.stdout[-3000:]
    assert resumed_from(trial.stdout) is None
