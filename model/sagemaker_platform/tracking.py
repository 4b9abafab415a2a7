"""MLflow experiment tracking, beside TensorBoard, when MLFLOW_TRACKING_URI is set.

    MLFLOW_TRACKING_URI     an MLflow server's URL, or a SageMaker managed MLflow ARN
                            (read through the sagemaker-mlflow plug-in the image carries)
    MLFLOW_EXPERIMENT_NAME  the experiment (default: the plug-in's name)

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import contract, logs
from .errors import UserError
from .hyperparameters import JobConfig

log = logging.getLogger("train")


@dataclass(frozen=True)
class Tracking:
    """Where the job's MLflow run goes."""

    uri: str
    experiment: str
    run_name: str | None  # the training job's name


def from_env(job: JobConfig, env: Mapping[str, str] | None = None) -> Tracking | None:
    """The MLflow settings of this job, or None when MLFLOW_TRACKING_URI is not set."""
    env = os.environ if env is None else env
    uri = env.get(contract.MLFLOW_TRACKING_URI_ENV, "").strip()
    if not uri:
        return None
    experiment = env.get(contract.MLFLOW_EXPERIMENT_ENV, "").strip() or job.plugin.name
    return Tracking(uri, experiment, contract.training_job_name())


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
    return FirstValueWins(
        experiment_name=tracking.experiment,
        run_name=tracking.run_name,
        tracking_uri=tracking.uri,
        tags={k: v for k, v in tags.items() if v},
    )


def start(mlflow_logger: Any, tracking: Tracking, job: JobConfig) -> None:
    """Open the run and log the job's hyperparameters, before training starts: a tracking
    server that cannot be reached fails the job now, with the variable named, rather
    than after the training was paid for."""
    try:
        run_id = mlflow_logger.run_id  # creates the experiment and the run (rank 0)
        mlflow_logger.log_hyperparams({**job.log_values(), **job.reserved})
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"MLflow at {contract.MLFLOW_TRACKING_URI_ENV}={tracking.uri} cannot be used: "
            f"{first[:300]}"
        ) from exc
    if run_id is not None:
        log.info(
            "mlflow %s",
            logs.kv(experiment=tracking.experiment, run_id=run_id, uri=tracking.uri),
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
