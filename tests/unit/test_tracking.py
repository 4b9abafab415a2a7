"""MLFLOW_TRACKING_URI checked before torch is imported; the check that opens the run is
bounded to seconds; a database's artifacts stay out of the program folder."""

from __future__ import annotations

import os

import pytest

from sagemaker_platform import tracking
from sagemaker_platform.errors import UserError
from sagemaker_platform.hyperparameters import parse


@pytest.mark.parametrize(
    "uri,database",
    [
        ("http://127.0.0.1:5000", False),
        ("https://mlflow.example.com/team", False),
        ("arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team", False),
        ("databricks", False),
        ("sqlite:////tmp/mlflow.db", True),
        ("sqlite:////tmp/mlflow.db?timeout=20", True),
        ("postgresql+psycopg2://user:secret@db.example.com/mlflow", True),
        ("mysql://db.example.com/mlflow", True),
    ],
)
def test_what_mlflow_can_keep_a_run_in_is_accepted(uri, database):
    assert tracking.check_uri(uri) is database


@pytest.mark.parametrize(
    "uri,reason",
    [
        ("file:/tmp/mlruns", "is a folder (MLflow's file store)"),
        ("file:///tmp/mlruns", "is a folder (MLflow's file store)"),
        ("mlruns", "is a folder (MLflow's file store)"),
        ("sqlite:///mlflow.db", "is a relative path"),
        ("sqlite://", "is an in-memory database"),
        ("sqlite:///:memory:", "is an in-memory database"),
        ("sqlite:/tmp/x.db", "is not a sqlite URL"),
        ("ftp://example.com/x", "has the scheme 'ftp'"),
    ],
)
def test_what_it_cannot_is_one_line_naming_the_variable(uri, reason):
    with pytest.raises(UserError) as caught:
        tracking.check_uri(uri)
    message = str(caught.value)
    assert message.startswith(f"MLFLOW_TRACKING_URI={uri} {reason}")
    assert "\n" not in message


def test_a_password_in_the_uri_is_not_shown():
    assert (
        tracking.shown_uri("postgresql://user:secret@db.example.com:5432/mlflow")
        == "postgresql://user:***@db.example.com:5432/mlflow"
    )
    assert tracking.shown_uri("https://mlflow.example.com") == "https://mlflow.example.com"
    with pytest.raises(UserError) as caught:
        tracking.check_uri("ftp://user:secret@example.com/x")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "https://mlflow.example.com/?token=s3cret&x=1",
            "https://mlflow.example.com/?token=***&x=***",
        ),
        ("https://u:s3cret@[host/x", "https://u:***@[host/x"),  # no valid URL
        ("postgresql://u:p@ss:w@db/x", "postgresql://u:***@db/x"),  # an @ in the password
    ],
)
def test_a_secret_is_masked_wherever_it_sits_in_the_uri(uri, shown):
    assert tracking.shown_uri(uri) == shown


def test_a_uri_python_cannot_parse_is_a_reason_not_a_traceback():
    with pytest.raises(UserError) as caught:
        tracking.check_uri("https://u:s3cret@[host")
    assert "is not a URL" in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_check_is_bounded_and_the_job_environment_comes_back(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with tracking.bounded_requests():
        from mlflow.environment_variables import (
            MLFLOW_HTTP_REQUEST_MAX_RETRIES,
            MLFLOW_HTTP_REQUEST_TIMEOUT,
        )

        assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() <= 10
        assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() <= 1
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_database_keeps_new_experiments_artifacts_in_the_output_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    job = parse({"model": "tabular"})
    db = tracking.from_env(job, {"MLFLOW_TRACKING_URI": "sqlite:////tmp/x.db"})
    assert db.artifact_location == str(tmp_path / "output" / "mlflow")
    server = tracking.from_env(job, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    assert server.artifact_location is None  # the server decides
    assert tracking.from_env(job, {}) is None
