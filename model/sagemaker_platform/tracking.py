"""MLflow experiment tracking, beside TensorBoard, when MLFLOW_TRACKING_URI is set.

    MLFLOW_TRACKING_URI     an MLflow server's URL, or a SageMaker managed MLflow ARN
                            (read through the sagemaker-mlflow plug-in the image carries)
    MLFLOW_EXPERIMENT_NAME  the experiment (default: the plug-in's name)

The variable may also name a database (`sqlite:////absolute/path.db`, `postgresql://...`):
MLflow would keep that run's artifacts in ./mlruns, the program folder, so a job that
creates the experiment puts them in output/mlflow/ instead. A folder (`file:`, MLflow's
file store, which MLflow 3 refuses) and a relative or in-memory sqlite path are refused
in `prepare`, before torch is imported.

The run is named after the training job (TRAINING_JOB_NAME) and gets, through Lightning's
own `MLFlowLogger`: the job's hyperparameters (the platform's and the plug-in's as
parsed, and the keys SageMaker added), every metric the LightningModule logs at the
TensorBoard cadence and at each epoch end (`train_loss_epoch`, `val_*`), and at the end
the final report as `final_*` metrics with output/data/ (metrics.json, plots) as
artifacts. Only the job's rank 0 (the first host's first process) logs. Without the
variable nothing here runs and mlflow is never imported.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import contract, logs
from .errors import UserError
from .hyperparameters import JobConfig

log = logging.getLogger("train")

SERVERS = ("http", "https", "databricks")  # and a SageMaker managed MLflow ARN (arn:)
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # mlflow.store.db.db_types
_EXPECTED = (
    "expected an MLflow server's URL (http:// or https://), a SageMaker managed MLflow "
    "ARN (arn:aws:sagemaker:...), or a database (sqlite:////absolute/path.db, "
    "postgresql://, mysql://, mssql://)"
)

# MLflow retries a request 7 times, its backoff doubling from 2 s, and waits 120 s for
# each answer: an unreachable server took 4 minutes to fail a job, one that accepts
# connections and never answers far longer. The check that opens the run before
# training (`start`) is bounded to seconds with these; the job's later requests keep
# MLflow's settings (or the job environment's), so that a blip in hour three does not
# fail it.
CHECK_HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",  # seconds to connect, and to wait for an answer
}


@dataclass(frozen=True)
class Tracking:
    """Where the job's MLflow run goes."""

    uri: str
    experiment: str
    run_name: str | None  # the training job's name
    # Where a new experiment keeps its runs' artifacts; None: the server decides.
    artifact_location: str | None = None


def from_env(job: JobConfig, env: Mapping[str, str] | None = None) -> Tracking | None:
    """The MLflow settings of this job, or None when MLFLOW_TRACKING_URI is not set. A
    URI MLflow cannot keep a run in fails here, before torch is imported."""
    env = os.environ if env is None else env
    uri = env.get(contract.MLFLOW_TRACKING_URI_ENV, "").strip()
    if not uri:
        return None
    database = check_uri(uri)
    experiment = env.get(contract.MLFLOW_EXPERIMENT_ENV, "").strip() or job.plugin.name
    # MLflow's default for a database is ./mlruns: the program folder, the working
    # directory of `train` in the image. The job's output tree instead.
    location = str(contract.output_dir() / "mlflow") if database else None
    return Tracking(uri, experiment, contract.training_job_name(), location)


def check_uri(uri: str) -> bool:
    """A UserError unless MLflow can keep a run at `uri`; True for a database."""
    shown = f"{contract.MLFLOW_TRACKING_URI_ENV}={shown_uri(uri)}"
    if uri.startswith("arn:") or uri == "databricks":  # a Databricks profile's server
        return False
    try:
        scheme = urlsplit(uri).scheme.lower()
    except ValueError as exc:  # an unclosed IPv6 bracket, a bad port
        raise UserError(f"{shown} is not a URL ({exc}): {_EXPECTED}") from None
    if scheme in ("", "file"):
        raise UserError(
            f"{shown} is a folder (MLflow's file store), which MLflow 3 refuses and which "
            f"would be lost with the job's container; {_EXPECTED}"
        )
    if scheme in SERVERS:
        return False
    if scheme.split("+")[0] not in DATABASES:  # postgresql+psycopg2://
        raise UserError(f"{shown} has the scheme {scheme!r}: {_EXPECTED}")
    if scheme == "sqlite":
        if not uri.lower().startswith("sqlite://"):
            raise UserError(f"{shown} is not a sqlite URL: sqlite:////absolute/path.db")
        rest = uri[len("sqlite://") :].split("?", 1)[0]
        path = rest[1:] if rest.startswith("/") else rest
        if path in ("", ":memory:"):
            raise UserError(
                f"{shown} is an in-memory database, gone when the job ends: give a file, "
                "sqlite:////absolute/path.db"
            )
        if not path.startswith("/"):
            raise UserError(
                f"{shown} is a relative path, which would put the database in the program "
                "folder: give an absolute one, sqlite:////absolute/path.db (four slashes)"
            )
    return True


def shown_uri(uri: str) -> str:
    """`uri` for a log line or a reason: a password in it (a database's, a server's
    basic authentication) and every query value (`?token=...`) become ***, also in a
    string that is no valid URL."""
    masked = _USERINFO.sub(r"\1***@", uri)
    return _QUERY_VALUE.sub(r"\1***", masked)


_USERINFO = re.compile(r"^([^:/?#]+://[^/?#@:]*:)[^/?#]*@")  # scheme://user:PASSWORD@
_QUERY_VALUE = re.compile(r"([?&][^=&#]*=)[^&#]*")  # ?key=VALUE&key=VALUE


def logger(tracking: Tracking, job: JobConfig):
    """Lightning's MLFlowLogger for the run; the first hyperparameters logged win."""
    # The run's URL is in the `mlflow ...` line; mlflow would also print it to stdout,
    # decorated, at every end of the run.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if not tracking.uri.startswith("arn:"):
        # sagemaker-mlflow 0.5's request header provider takes every tracking URI for an
        # ARN and fails on a URL, which mlflow logs as a warning on every request; its
        # header only matters for an ARN.
        logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)
    from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
    from lightning.pytorch.loggers import MLFlowLogger
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    class FirstValueWins(MLFlowLogger):
        """MLflow refuses a parameter logged twice with two values; Lightning logs the
        LightningModule's own hyperparameters after ours, some resolved (the tabular
        model's task=auto becomes classification): the job's value as given stays."""

        _logged: set[str]

        @rank_zero_only
        def log_hyperparams(self, params) -> None:
            flat = _flatten_dict(_convert_params(params))
            logged = getattr(self, "_logged", set())
            fresh = {k: v for k, v in flat.items() if k not in logged}
            self._logged = logged | set(fresh)
            if fresh:
                super().log_hyperparams(fresh)

    tags = {"sagemaker_training_job": tracking.run_name or "", "model": job.plugin.name}
    if job.tuning_objective:
        tags["tuning_objective"] = job.tuning_objective
    try:  # opens the store: a database here, a missing driver
        return FirstValueWins(
            experiment_name=tracking.experiment,
            run_name=tracking.run_name,
            tracking_uri=tracking.uri,
            tags={k: v for k, v in tags.items() if v},
            artifact_location=tracking.artifact_location,
        )
    except Exception as exc:
        raise _unusable(tracking, exc) from exc


@contextmanager
def bounded_requests() -> Iterator[None]:
    """MLflow's HTTP requests fail in seconds inside, not minutes (CHECK_HTTP_SETTINGS):
    MLflow reads these variables at each request."""
    saved = {name: os.environ.get(name) for name in CHECK_HTTP_SETTINGS}
    os.environ.update(CHECK_HTTP_SETTINGS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _unusable(tracking: Tracking, exc: Exception) -> UserError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UserError(
        f"MLflow at {contract.MLFLOW_TRACKING_URI_ENV}={shown_uri(tracking.uri)} cannot be "
        f"used: {first[:300]}"
    )


def start(mlflow_logger: Any, tracking: Tracking, job: JobConfig) -> None:
    """Open the run and log the job's hyperparameters, before training starts: a tracking
    server that cannot be reached fails the job now, with the variable named, rather
    than after the training was paid for."""
    try:
        with bounded_requests():
            run_id = mlflow_logger.run_id  # creates the experiment and the run (rank 0)
            mlflow_logger.log_hyperparams({**job.log_values(), **job.reserved})
    except Exception as exc:
        raise _unusable(tracking, exc) from exc
    if run_id is not None:
        log.info(
            "mlflow %s",
            logs.kv(experiment=tracking.experiment, run_id=run_id, uri=shown_uri(tracking.uri)),
        )


def finish(mlflow_logger: Any, report: Mapping[str, Any], out_dir: Path) -> None:
    """Rank 0, after export: the final report as `final_*` metrics and output/data/ as
    artifacts (Lightning has closed the run as FINISHED at the end of `fit`)."""
    final = {
        f"final_{name}": float(value)
        for name, value in report.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    }
    if final:
        mlflow_logger.log_metrics(final)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        mlflow_logger.experiment.log_artifacts(mlflow_logger.run_id, str(out_dir))
