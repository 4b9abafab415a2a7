"""Hyperparameter tuning jobs: the training job's settings, ranges, an objective.

`plan_tuning` takes everything `plan_training` takes, plus the ranges to search and the
objective, and checks them offline: each range against the type and bounds of the
hyperparameter it names (the platform's `TrainSettings` or the chosen plug-in's
`Hyperparameters`, with the container's own parser), the objective against the metrics
the job's log lines carry (`metrics.objective_names`). `tune` sends it with boto3's
CreateHyperParameterTuningJob; `wait_for_tuning` and `describe_tuning` report the trials
and the best one, whose model `endpoints.deploy(tuning_job=...)` deploys. The ranges'
syntax and checks are in `ranges.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sagemaker_platform.config import TrainSettings

from . import metrics
from .jobs import TrainingPlan, plan_training
from .ranges import Range, check_ranges
from .settings import LauncherError, check_name, is_dry_run, resolve, takes_plan_arguments
from .waiting import JobFailed, Status, say, wait_for

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
EARLY_STOPPING = ("Off", "Auto")
WARM_START_TYPES = ("IdenticalDataAndAlgorithm", "TransferLearning")
TERMINAL = ("Completed", "Failed", "Stopped")
DEFAULT_MAX_JOBS = 10
MAX_NAME = 32  # HyperParameterTuningJobName
MAX_PARENTS = 5  # warm start: parent tuning jobs
_STAMP = "%y%m%d-%H%M%S"  # 13 characters, after a hyphen


@dataclass(frozen=True)
class TuningPlan:
    """Everything `tune` sends, resolved and checked; no request has been made."""

    name: str
    training: TrainingPlan
    ranges: tuple[Range, ...]
    objective: str
    direction: str  # Maximize or Minimize
    strategy: str
    max_jobs: int | None  # None: Grid tries every combination
    max_parallel_jobs: int
    early_stopping: str
    warm_start_from: tuple[str, ...] = ()
    warm_start_type: str = "IdenticalDataAndAlgorithm"
    max_epochs: int = TrainSettings.epochs  # Hyperband's MaxResource

    def request(self) -> dict[str, Any]:
        """The CreateHyperParameterTuningJob request."""
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {
                "Type": self.direction,
                "MetricName": self.objective,
            },
            "ResourceLimits": {"MaxParallelTrainingJobs": self.max_parallel_jobs},
            "ParameterRanges": {
                f"{kind}ParameterRanges": [r.as_api() for r in self.ranges if r.kind == kind]
                for kind in ("Integer", "Continuous", "Categorical")
            },
            "TrainingJobEarlyStoppingType": self.early_stopping,
        }
        if self.max_jobs is not None:
            config["ResourceLimits"]["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.strategy == "Hyperband":
            # An epoch is Hyperband's unit: a trial runs at least one, at most `epochs`.
            config["StrategyConfig"] = {
                "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": self.max_epochs}
            }
        request = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": training_definition(self.training),
        }
        if self.warm_start_from:
            request["WarmStartConfig"] = {
                "ParentHyperParameterTuningJobs": [
                    {"HyperParameterTuningJobName": n} for n in self.warm_start_from
                ],
                "WarmStartType": self.warm_start_type,
            }
        return request


def training_definition(plan: TrainingPlan) -> dict[str, Any]:
    """HyperParameterTrainingJobDefinition: the training job of every trial."""
    definition: dict[str, Any] = {
        "StaticHyperParameters": dict(plan.hyperparameters),
        "AlgorithmSpecification": {
            "TrainingImage": plan.target.image_uri,
            "TrainingInputMode": plan.input_mode,
            "MetricDefinitions": list(plan.metric_definitions),
        },
        "RoleArn": plan.target.role,
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": plan.distribution.get(name, "FullyReplicated"),
                    }
                },
                "InputMode": plan.input_mode,
            }
            for name, uri in plan.channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": plan.output_s3_uri, "CompressionType": "GZIP"},
        "ResourceConfig": {
            "InstanceType": plan.instance_type,
            "InstanceCount": plan.instance_count,
            "VolumeSizeInGB": plan.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": plan.max_run_seconds},
        "EnableManagedSpotTraining": plan.spot,
    }
    if plan.max_wait_seconds:
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"] = plan.max_wait_seconds
    if plan.checkpoint_s3_uri:
        # Every trial gets this URI; each keeps its own checkpoints/<job name>/ in it.
        definition["CheckpointConfig"] = {
            "S3Uri": plan.checkpoint_s3_uri,
            "LocalPath": plan.checkpoint_local_path,
        }
    if plan.environment:
        definition["Environment"] = dict(plan.environment)
    return definition


# --- the plan -------------------------------------------------------------------------------
def plan_tuning(
    *,
    ranges: Mapping[str, Any],
    objective: str,
    direction: str | None = None,
    strategy: str = "Bayesian",
    max_jobs: int | None = None,
    max_parallel_jobs: int = 2,
    early_stopping: str = "Off",
    warm_start_from: Sequence[str] = (),
    warm_start_type: str = "IdenticalDataAndAlgorithm",
    name: str | None = None,
    **training: Any,
) -> TuningPlan:
    """Check and resolve a tuning job; raises LauncherError, sends nothing.

    `training` takes the keyword arguments of `plan_training` (train=, hyperparameters=,
    instance_type=, spot=, ...): the settings of every trial, `hyperparameters` its fixed
    ones. `ranges` maps hyperparameter names to "MIN:MAX[:SCALE]" or a list of values.
    """
    if training.get("keep_alive_seconds"):
        raise LauncherError(
            "warm pools (keep alive) are for training jobs one at a time; a tuning job "
            "starts its trials on its own instances"
        )
    if training.get("tensorboard_s3_uri"):
        raise LauncherError("a tuning job's trials take no TensorBoard output configuration")
    plan = plan_training(**training)
    model = plan.hyperparameters.get("model", TrainSettings.model)
    checked = check_ranges(ranges, plan.hyperparameters, model)
    known = metrics.objective_names(model)
    if objective not in known:
        raise LauncherError(
            f"objective {objective!r} is not a metric model={model} logs; one of: "
            + ", ".join(known)
        )
    direction = direction or metrics.direction(objective)
    if direction not in ("Maximize", "Minimize"):
        raise LauncherError(f"direction {direction!r}: expected Maximize or Minimize")
    if strategy not in STRATEGIES:
        raise LauncherError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if early_stopping not in EARLY_STOPPING:
        raise LauncherError(
            f"early stopping {early_stopping!r}: expected {' or '.join(EARLY_STOPPING)}"
        )
    epochs = int(plan.hyperparameters.get("epochs", TrainSettings.epochs))
    if strategy == "Hyperband":
        if early_stopping != "Off":
            raise LauncherError(
                "Hyperband stops weak trials itself: early stopping must be Off with it"
            )
        if "epochs" in ranges:
            raise LauncherError(
                "Hyperband decides how many epochs each trial trains: fix epochs (the most "
                "a trial may run) instead of tuning it"
            )
    if strategy == "Grid":
        loose = [r.name for r in checked if r.kind != "Categorical"]
        if loose:
            raise LauncherError(
                f"Grid searches listed values only: give {loose[0]} as values (A,B,...), "
                "not MIN:MAX"
            )
    if max_jobs is None and strategy != "Grid":
        max_jobs = DEFAULT_MAX_JOBS
    for value, what in ((max_jobs, "max jobs"), (max_parallel_jobs, "max parallel jobs")):
        if value is None:  # Grid: as many as there are combinations
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LauncherError(f"{what} {value!r}: expected a whole number >= 1")
    if max_jobs is not None and max_parallel_jobs > max_jobs:
        raise LauncherError(
            f"max parallel jobs ({max_parallel_jobs}) is more than max jobs ({max_jobs})"
        )
    parents = tuple(warm_start_from or ())
    if len(parents) > MAX_PARENTS:
        raise LauncherError(f"warm start from {len(parents)} jobs: at most {MAX_PARENTS}")
    for parent in parents:
        check_name(parent, "warm start tuning job", MAX_NAME)
    if warm_start_type not in WARM_START_TYPES:
        raise LauncherError(
            f"warm start type {warm_start_type!r}: expected {' or '.join(WARM_START_TYPES)}"
        )
    return TuningPlan(
        name=check_name(name or _default_name(plan.base_job_name), "tuning job name", MAX_NAME),
        training=plan,
        ranges=checked,
        objective=objective,
        direction=direction,
        strategy=strategy,
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        early_stopping=early_stopping,
        warm_start_from=parents,
        warm_start_type=warm_start_type,
        max_epochs=epochs,
    )


def _default_name(base: str) -> str:
    """`<base>-YYmmdd-HHMMSS` within the 32 characters a tuning job's name may have."""
    from datetime import datetime, timezone

    stem = base[: MAX_NAME - 14].rstrip("-") or "tune"
    return f"{stem}-{datetime.now(timezone.utc):{_STAMP}}"


# --- send, follow, describe -------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    name: str
    status: str
    objective: float | None = None  # the final value of the objective metric
    hyperparameters: dict[str, str] = field(default_factory=dict)  # the tuned values


@dataclass(frozen=True)
class TuningJobInfo:
    name: str
    status: str
    objective: str | None = None
    direction: str | None = None
    counters: dict[str, int] = field(default_factory=dict)  # TrainingJobStatusCounters
    best: Trial | None = None
    trials: tuple[Trial, ...] = ()
    failure_reason: str | None = None


def _plan_arguments(fn):
    """`tune` shows plan_tuning's arguments and, through it, plan_training's."""
    fn = takes_plan_arguments(plan_tuning)(fn)
    return takes_plan_arguments(plan_training)(fn)


@_plan_arguments
def tune(
    *,
    wait: bool = True,
    poll_seconds: float = 60.0,
    timeout_seconds: float | None = None,
    boto_session: Any = None,
    **launch: Any,
) -> TuningJobInfo:
    """Start a hyperparameter tuning job on our image; wait for it unless `wait=False`.

    `launch` takes the keyword arguments of `plan_tuning` (ranges=, objective=,
    strategy=, max_jobs=, ...) and of `plan_training` (train=, hyperparameters=, ...).
    Returns the job with its trials and the best one; raises JobFailed if it ends Failed
    or Stopped, WaitTimeout if it is still running after `timeout_seconds`.
    """
    plan = plan_tuning(boto_session=boto_session, **launch)
    session = boto_session or plan.training.target.boto_session()
    session.client("sagemaker").create_hyper_parameter_tuning_job(**plan.request())
    say(
        f"tuning job {plan.name} created in {plan.training.target.region}: "
        f"{plan.direction} {plan.objective}, {plan.strategy}, "
        f"{plan.max_jobs or 'every combination of'} trials, {plan.max_parallel_jobs} at a time"
    )
    if not wait or is_dry_run(session):
        return describe_tuning(plan.name, boto_session=session, trials=False)
    return wait_for_tuning(
        plan.name, boto_session=session, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds
    )


def describe_tuning(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    trials: bool = True,
) -> TuningJobInfo:
    """The tuning job's status, counts, best trial and (with `trials`) every trial."""
    session = boto_session or resolve(region).boto_session()
    client = session.client("sagemaker")
    d = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    objective = d["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective") or {}
    best = d.get("BestTrainingJob")
    return TuningJobInfo(
        name=name,
        status=d["HyperParameterTuningJobStatus"],
        objective=objective.get("MetricName"),
        direction=objective.get("Type"),
        counters=dict(d.get("TrainingJobStatusCounters") or {}),
        best=_trial(best) if best else None,
        trials=tuple(_trials(client, name)) if trials else (),
        failure_reason=d.get("FailureReason") or None,
    )


def _trial(summary: Mapping[str, Any]) -> Trial:
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return Trial(
        name=summary["TrainingJobName"],
        status=summary["TrainingJobStatus"],
        objective=final.get("Value"),
        hyperparameters=dict(summary.get("TunedHyperParameters") or {}),
    )


def _trials(client: Any, name: str) -> list[Trial]:
    pages = client.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, SortBy="CreationTime", SortOrder="Ascending"
    )
    return [_trial(s) for page in pages for s in page["TrainingJobSummaries"]]


def best_training_job(name: str, boto_session: Any) -> str:
    """The best trial of tuning job `name` that left a model: the one `deploy` takes.

    SageMaker's BestTrainingJob, unless it was stopped early (a stopped trial writes no
    model.tar.gz): then the best of the trials that completed.
    """
    info = describe_tuning(name, boto_session=boto_session, trials=False)
    best = info.best
    if best is not None and best.status != "Completed":
        info = describe_tuning(name, boto_session=boto_session)
        completed = best_completed(info)
        say(
            f"best trial of tuning job {name}, {best.name}, is {best.status} and left no "
            "model" + ("; taking the best completed one" if completed else "")
        )
        best = completed
    if best is None:
        raise LauncherError(
            f"tuning job {name} ({info.status}) has no completed best training job yet: a "
            f"trial must complete and log its objective ({info.objective}) first"
        )
    say(f"best trial of tuning job {name}: {best.name} {_objective(info, best)}")
    return best.name


def best_completed(info: TuningJobInfo) -> Trial | None:
    """The best of the trials that completed with an objective value (they left a model)."""
    done = [t for t in info.trials if t.status == "Completed" and t.objective is not None]
    pick = max if info.direction == "Maximize" else min
    return pick(done, key=lambda t: t.objective) if done else None


def _objective(info: TuningJobInfo, trial: Trial) -> str:
    value = "none" if trial.objective is None else f"{trial.objective:g}"
    return f"{info.objective}={value}"


def report(info: TuningJobInfo) -> list[str]:
    """Lines for the terminal: one per trial, then the best."""
    lines = [
        f"trial {t.name} {t.status} {_objective(info, t)} "
        + " ".join(f"{k}={v}" for k, v in sorted(t.hyperparameters.items()))
        for t in info.trials
    ]
    if info.best is not None:
        lines.append(
            f"best {info.best.name} {_objective(info, info.best)} ({info.direction}) "
            + " ".join(f"{k}={v}" for k, v in sorted(info.best.hyperparameters.items()))
        )
        if info.best.status != "Completed":
            # Early stopping (or a stop) cut it short: no model.tar.gz to deploy.
            completed = best_completed(info)
            lines.append(
                f"the best trial, {info.best.name}, is {info.best.status}: it left no model; "
                + (
                    f"deploy --tuning-job takes the best completed one, {completed.name} "
                    f"{_objective(info, completed)}"
                    if completed
                    else "no trial has completed with an objective value, so there is "
                    "nothing to deploy yet"
                )
            )
    return [line.rstrip() for line in lines]


def wait_for_tuning(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 60.0,
    timeout_seconds: float | None = None,
) -> TuningJobInfo:
    """Follow a tuning job to its end, printing its trial counts as they change; then
    its trials and the best one."""
    session = boto_session or resolve(region).boto_session()

    def poll() -> Status:
        info = describe_tuning(name, boto_session=session, trials=False)
        counts = ", ".join(f"{k} {v}" for k, v in info.counters.items() if v)
        best = f"; best {info.best.name} {_objective(info, info.best)}" if info.best else ""
        return Status(info.status, f"trials: {counts or 'none yet'}{best}")

    final = wait_for(
        f"tuning job {name}",
        poll,
        TERMINAL,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    info = describe_tuning(name, boto_session=session)
    for line in report(info):
        say(line)
    if final.state != "Completed":
        raise JobFailed(
            f"tuning job {name} ended {final.state}: {info.failure_reason or 'no reason given'}",
            info,
        )
    return info
