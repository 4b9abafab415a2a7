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

import pytest
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
    env = {"MODEL_SERVER_PRECISION": "fp32", "MODEL_SERVER_WORKERS": "1"}  # one request
    with helpers.Server(base_dir, env=env) as server:
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


def top_level(checkpoints: Path) -> dict[str, tuple[int, int]]:
    """The checkpoint files at the top of checkpoints/: name -> (size, mtime in ns)."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in checkpoints.glob("*.ckpt")}


@pytest.fixture(scope="module")
def shared_uri(tmp_path_factory) -> dict:
    """One checkpoints/ (one checkpoint_s3_uri) used in turn by two plain jobs and three
    trial runs, as SageMaker copies the URI onto each: the tests below read what each
    run printed and left. One sequence for both tests, so that the trials meet a plain
    job's checkpoint at the top (the case that matters) and no job runs twice.

    1. plain-job-1: trains, checkpoints at the top.
    2. plain-job-2: a new plain job on the same URI resumes the top.
    3. trial tune-1-001 (SDK keys): trains from scratch in its own folder.
    4. trial tune-1-002: from scratch too, not from 001's folder.
    5. tune-1-001 again with epochs=2 (a spot restart): resumes its own, and goes on."""
    hp = {**helpers.test_hyperparameters("tabular"), "epochs": "1"}
    base = tmp_path_factory.mktemp("shared_uri") / "opt_ml"
    helpers.write_sample_job(base, hp, model="tabular")
    hp_path = base / "input" / "config" / "hyperparameters.json"
    plain = json.loads(hp_path.read_text())
    checkpoints = base / "checkpoints"
    runs, tops = {}, {}

    def run(key: str, job_name: str, raw: dict) -> None:
        hp_path.write_text(json.dumps(raw))
        shutil.rmtree(base / "model", ignore_errors=True)
        result = helpers.run_entry("train", base, env={"TRAINING_JOB_NAME": job_name})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        runs[key] = result.stdout
        tops[key] = top_level(checkpoints)

    trial = {**plain, **SDK_KEYS}
    run("plain-1", "plain-job-1", plain)
    run("plain-2", "plain-job-2", plain)
    run("trial-1", "tune-1-001-aaaaaaaa", trial)
    run("trial-2", "tune-1-002-bbbbbbbb", trial)
    run("restart", "tune-1-001-aaaaaaaa", {**trial, "epochs": "2"})
    return {"checkpoints": checkpoints, "runs": runs, "tops": tops}


def test_trials_sharing_a_checkpoint_uri_never_resume_each_other(shared_uri):
    """Two trials, one checkpoints/ (as SageMaker copies the shared URI onto each): each
    trains from scratch in its own folder; a restart of the first resumes its own."""
    checkpoints, runs, tops = shared_uri["checkpoints"], shared_uri["runs"], shared_uri["tops"]
    own = checkpoints / "tune-1-001-aaaaaaaa"
    first = runs["trial-1"]
    assert resumed_from(first) is None
    assert f"checkpoints dir={own} trial=tune-1-001-aaaaaaaa" in first
    assert (own / "last.ckpt").is_file() and (own / "best.ckpt").is_file()
    # A trial writes nothing at the top: the plain jobs' files there are as they left them.
    assert (
        tops["plain-2"]
        and tops["trial-1"] == tops["trial-2"] == tops["restart"] == (tops["plain-2"])
    ), "a trial wrote at the top"

    assert resumed_from(runs["trial-2"]) is None, "the second trial resumed the first's"
    assert (checkpoints / "tune-1-002-bbbbbbbb" / "last.ckpt").is_file()

    # A spot restart of the first trial (same job name) resumes its own, and goes on.
    restart = runs["restart"]
    assert resumed_from(restart) == str(own / "last.ckpt")
    assert re.findall(r"INFO train: epoch=(\d+) train_loss", restart) == ["2"]


def test_a_plain_job_still_resumes_the_top_level_and_a_trial_ignores_it(shared_uri):
    checkpoints, runs = shared_uri["checkpoints"], shared_uri["runs"]
    top: Path = checkpoints / "last.ckpt"
    assert resumed_from(runs["plain-1"]) is None
    assert "last.ckpt" in shared_uri["tops"]["plain-1"], (
        "outside a tuning job checkpoints stay at the top, as before"
    )
    assert resumed_from(runs["plain-2"]) == str(top)  # a new job on the same URI resumes
    assert resumed_from(runs["trial-1"]) is None  # a trial does not, though it is there
