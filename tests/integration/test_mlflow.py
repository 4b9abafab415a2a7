"""Training logs to MLflow when MLFLOW_TRACKING_URI is set: a real `mlflow server` on
loopback (sqlite backend and artifact store in a temporary folder), read back through
MlflowClient. Without the variable, mlflow is not even imported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests import helpers


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free loopback port; its start takes seconds. Without the
    server-side job runner (mlflow 3's huey consumers, for jobs a training job never asks
    for): 2 processes instead of 10, about 6 CPU seconds in their first 20 s instead of 27."""
    root = tmp_path_factory.mktemp("mlflow")
    port = helpers.free_port()
    log = (root / "server.log").open("w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
        ],
        cwd=str(root),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers go with it at the end
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def program_folder():
    """The program folder (`train`'s working directory) gains nothing: no mlruns/ or
    database (removed afterwards, should the code under test have written one)."""
    before = {p.name for p in helpers.MODEL_DIR.iterdir()}
    yield helpers.MODEL_DIR
    new = {p.name for p in helpers.MODEL_DIR.iterdir()} - before - {"__pycache__"}
    for name in new & {"mlruns", "mlflow.db", "mlartifacts"}:
        path = helpers.MODEL_DIR / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not new, f"written into the program folder: {sorted(new)}"


def tabular_job(tmp_path, epochs: int = 3):
    base = tmp_path / "opt_ml"
    hp = {
        **helpers.test_hyperparameters("tabular"),
        "epochs": str(epochs),
        "early_stopping_patience": "0",
    }
    helpers.write_sample_job(base, hp, model="tabular")
    return base


def test_a_job_logs_hyperparameters_epoch_metrics_and_its_report(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    base = tabular_job(tmp_path)
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_EXPERIMENT_NAME": "support-tickets",
        "TRAINING_JOB_NAME": "tabular-20261202-0001",
    }
    result = helpers.run_entry("train", base, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "INFO train: mlflow experiment=support-tickets run_id=" in result.stdout

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("support-tickets")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tabular-20261202-0001"
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == "tabular"
    params = run.data.params
    # The job's hyperparameters as parsed (defaults too), the given value before the
    # LightningModule's resolved one (task=auto, not classification).
    assert params["model"] == "tabular" and params["epochs"] == "3"
    assert params["batch_size"] == "32" and params["task"] == "auto"
    assert params["learning_rate"] == "0.003"
    # Each epoch's validation metrics and train loss, one point per epoch.
    for name in ("val_loss", "val_f1", "train_loss_epoch"):
        history = client.get_metric_history(run.info.run_id, name)
        assert len(history) == 3, (name, history)
    # The final report, as metrics.json has it, and metrics.json itself.
    report = json.loads((base / "output" / "data" / "metrics.json").read_text())
    metrics = run.data.metrics
    assert metrics["final_val_f1"] == pytest.approx(report["val_f1"])
    assert metrics["final_best_epoch"] == report["best_epoch"]
    assert metrics["final_train_rows"] == report["train_rows"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "metrics.json" in artifacts
    # TensorBoard still gets its events beside MLflow.
    assert list((base / "output" / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("server", ["refused", "blackholed"])
def test_an_unreachable_tracking_server_fails_the_job_in_seconds(tmp_path, server):
    """With MLflow's own retry settings (7 retries, 2 s backoff, 120 s timeouts) this took
    minutes; the job's check is bounded, so the run's timeout (well under MLflow's
    retries) is never reached. Nothing listens on a refused port; a blackholed one
    accepts connections and never answers."""
    base = tabular_job(tmp_path, epochs=1)
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        if server == "blackholed":
            blackhole.listen(16)
        uri = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        env = {"MLFLOW_TRACKING_URI": uri}
        result = helpers.run_entry("train", base, env=env, timeout=150)
    assert result.returncode == 1
    reason = helpers.failure_reason(base)
    assert reason.startswith(f"MLflow at MLFLOW_TRACKING_URI={uri} cannot be used: "), reason
    assert "train_loss=" not in result.stdout  # no epoch ran


@pytest.mark.parametrize(
    "uri,reason",
    [
        ("file:/tmp/mlruns", "is a folder (MLflow's file store)"),
        ("/tmp/mlruns", "is a folder (MLflow's file store)"),
        ("sqlite:///mlflow.db", "is a relative path"),
        ("sqlite://", "is an in-memory database"),
        ("ftp://example.com/x", "has the scheme 'ftp'"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_keep_fails_in_prepare_with_one_line(
    tmp_path, program_folder, uri, reason
):
    base = tabular_job(tmp_path, epochs=1)
    result = helpers.run_entry("train", base, env={"MLFLOW_TRACKING_URI": uri}, timeout=150)
    assert result.returncode == 1
    failure = helpers.failure_reason(base)
    assert failure.startswith(f"MLFLOW_TRACKING_URI={uri} {reason}"), failure
    assert "MlflowException" not in failure
    assert "INFO train: fit " not in result.stdout  # refused before torch was imported


@pytest.fixture(scope="module")
def sqlite_job(tmp_path_factory) -> dict:
    """One job tracked to a sqlite database with MLFLOW_EXPERIMENT_NAME unset, for the two
    tests below: where its artifacts went, and which experiment it logged to. What it
    wrote into the program folder is noted (and removed), as `program_folder` does."""
    tmp_path = tmp_path_factory.mktemp("sqlite_job")
    before = {p.name for p in helpers.MODEL_DIR.iterdir()}
    try:
        base = tabular_job(tmp_path, epochs=1)
        db = f"sqlite:///{tmp_path / 'mlflow.db'}"
        result = helpers.run_entry("train", base, env={"MLFLOW_TRACKING_URI": db})
    finally:
        written = {p.name for p in helpers.MODEL_DIR.iterdir()} - before - {"__pycache__"}
        for name in written & {"mlruns", "mlflow.db", "mlartifacts"}:
            path = helpers.MODEL_DIR / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"base": base, "db": db, "stdout": result.stdout, "written": written}


def test_a_sqlite_tracking_uri_keeps_artifacts_in_the_job_output(sqlite_job):
    """MLflow's default artifact root for a database is ./mlruns: the program folder,
    which is the working directory of `train` in the image."""
    from mlflow.tracking import MlflowClient

    assert not sqlite_job["written"], f"written into the program folder: {sqlite_job['written']}"
    client = MlflowClient(sqlite_job["db"])
    (run,) = client.search_runs([client.get_experiment_by_name("tabular").experiment_id])
    artifacts = sqlite_job["base"] / "output" / "mlflow"
    assert run.info.artifact_uri.startswith(str(artifacts)), run.info.artifact_uri
    assert list(artifacts.rglob("metrics.json"))


def test_the_experiment_defaults_to_the_plugin_name(sqlite_job):
    """No MLFLOW_EXPERIMENT_NAME: the job creates and logs to the experiment named after
    its plug-in (the same code whatever the store; creating an experiment on the tracking
    server is the first test's job, whose experiment is new to the server too)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_job["db"])
    experiment = client.get_experiment_by_name("tabular")
    assert experiment is not None
    # The job's one run, in that experiment and no other.
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.status == "FINISHED"
    assert "INFO train: mlflow experiment=tabular " in sqlite_job["stdout"]
