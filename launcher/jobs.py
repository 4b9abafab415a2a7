"""Training jobs: our image, typed hyperparameters, S3 channels, spot, metrics, TensorBoard.

`plan_training` checks everything and resolves every default without sending a request;
`train` hands the plan to the SageMaker SDK v3's `ModelTrainer`, then waits on the job
(or returns at once) through `wait_for_training`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sagemaker_platform import contract
from sagemaker_platform.config import TrainSettings

from . import channels as channel_settings
from . import metrics
from .params import hyperparameter_strings
from .settings import (
    LauncherError,
    Target,
    check_instance_type,
    check_name,
    check_s3_uri,
    is_dry_run,
    resolve,
    s3_bucket,
    takes_plan_arguments,
)
from .waiting import JobFailed, LogFollower, Status, say, wait_for

DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"  # one A10G: the CUDA image's smallest good fit
DEFAULT_BASE_JOB_NAME = "text-classifier"  # the default plug-in's
DEFAULT_VOLUME_GB = 50
DEFAULT_MAX_RUN_SECONDS = 24 * 3600
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")
# ModelTrainer names the job `<base>-<YYYYmmddHHMMSS>` and cuts it at 63 characters.
MAX_BASE_JOB_NAME = 63 - 15


def default_base_job_name(model: str | None) -> str:
    """The plug-in's name as a job's name: `model=tabular` -> `tabular`, `my_pkg.my_model`
    -> `my-pkg-my-model`; the default plug-in's without `model`."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", model or "").strip("-")[:MAX_BASE_JOB_NAME].rstrip("-")
    return name or DEFAULT_BASE_JOB_NAME


# ResourceConfig.KeepAlivePeriodInSeconds: how long a warm pool keeps the instances.
MAX_KEEP_ALIVE_SECONDS = 3600


@dataclass(frozen=True)
class TrainingPlan:
    """Everything `train` sends, resolved and checked; no request has been made."""

    target: Target
    base_job_name: str
    hyperparameters: dict[str, str]
    channels: dict[str, str]  # channel name -> S3 prefix
    output_s3_uri: str
    tensorboard_s3_uri: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_run_seconds: int
    spot: bool
    max_wait_seconds: int | None
    checkpoint_s3_uri: str | None
    keep_alive_seconds: int | None = None  # warm pool after the job; None: none
    environment: dict[str, str] = field(default_factory=dict)  # the job's Environment
    metric_definitions: list[dict[str, str]] = field(default_factory=metrics.metric_definitions)
    # Container-side paths, derived from the contract rather than spelled here.
    checkpoint_local_path: str = field(
        default_factory=lambda: contract.as_container_path(contract.checkpoints_dir())
    )
    tensorboard_local_path: str = field(
        default_factory=lambda: contract.as_container_path(contract.tensorboard_dir())
    )
    # How each channel reaches the hosts (launcher/channels.py): S3DataDistributionType
    # by channel (FullyReplicated unless sharded) and the channels' input mode.
    distribution: dict[str, str] = field(default_factory=dict)
    input_mode: str = contract.FILE_MODE


@dataclass(frozen=True)
class TrainingJobInfo:
    name: str
    status: str
    secondary_status: str | None = None
    model_data: str | None = None  # s3://.../model.tar.gz once the job completed
    metrics: dict[str, float] = field(default_factory=dict)  # FinalMetricDataList
    failure_reason: str | None = None


def plan_training(
    *,
    train: str,
    validation: str | None = None,
    pretrained: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = 1,
    volume_size_gb: int = DEFAULT_VOLUME_GB,
    max_run_seconds: int = DEFAULT_MAX_RUN_SECONDS,
    spot: bool = False,
    max_wait_seconds: int | None = None,
    checkpoint_s3_uri: str | None = None,
    output_s3_uri: str | None = None,
    tensorboard_s3_uri: str | None = None,
    keep_alive_seconds: int | None = None,
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str | None = None,
    base_job_name: str | None = None,
    region: str | None = None,
    role: str | None = None,
    image_uri: str | None = None,
    boto_session: Any = None,
    distribution: str | dict[str, str] | None = None,
    input_mode: str = contract.FILE_MODE,
) -> TrainingPlan:
    """Check and resolve a training launch; raises LauncherError, sends nothing.

    `distribution`: "sharded" (the train channel) or {channel: "sharded"|"replicated"};
    `input_mode`: "File" or "FastFile" (launcher/channels.py)."""
    target = resolve(
        region, role, image_uri, need_role=True, need_image=True, boto_session=boto_session
    )
    strings = hyperparameter_strings(hyperparameters)
    base_job_name = base_job_name or default_base_job_name(strings.get("model"))
    channels = {"train": check_s3_uri(train, "train channel")}
    for name, uri in (("validation", validation), (contract.PRETRAINED_CHANNEL, pretrained)):
        if uri:
            channels[name] = check_s3_uri(uri, f"{name} channel")
    check_name(base_job_name, "base job name", MAX_BASE_JOB_NAME)
    check_instance_type(instance_type, "training")
    distribution_types = channel_settings.distribution_types(distribution, channels)
    input_mode = channel_settings.check_input_mode(input_mode)
    # Default output next to the training data, so no extra bucket is created or looked up.
    output = check_s3_uri(output_s3_uri, "output", required=False)
    output = output or f"s3://{s3_bucket(train)}/{base_job_name}"
    output = output.rstrip("/")
    # SageMaker writes TensorBoard files under <path>/<job name>/tensorboard-output.
    tensorboard = check_s3_uri(tensorboard_s3_uri, "tensorboard", required=False)
    tensorboard = tensorboard or f"{output}/tensorboard"
    checkpoint = check_s3_uri(checkpoint_s3_uri, "checkpoint", required=False)
    for value, what, low in (
        (instance_count, "instance count", 1),
        (volume_size_gb, "volume size (GB)", 1),
        (max_run_seconds, "max run (seconds)", 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise LauncherError(f"{what} {value!r}: expected a whole number >= {low}")
    if spot:
        if not checkpoint:
            raise LauncherError(
                "managed spot training needs a checkpoint S3 URI (--checkpoint-s3-uri): "
                "SageMaker syncs the container's checkpoint folder there so an interrupted "
                "job resumes; reuse a URI to resume, use a fresh one for a fresh run"
            )
        max_wait_seconds = max_wait_seconds or 2 * max_run_seconds
        if max_wait_seconds < max_run_seconds:
            raise LauncherError(
                f"max wait ({max_wait_seconds} s) must be at least max run "
                f"({max_run_seconds} s): it counts the time spent waiting for spot capacity too"
            )
    elif max_wait_seconds is not None:
        raise LauncherError("max wait only applies to managed spot training (--spot)")
    if keep_alive_seconds is not None and (
        not isinstance(keep_alive_seconds, int)
        or isinstance(keep_alive_seconds, bool)
        or not 0 <= keep_alive_seconds <= MAX_KEEP_ALIVE_SECONDS
    ):
        raise LauncherError(
            f"keep alive {keep_alive_seconds!r} s: expected a whole number of seconds from 0 "
            f"to {MAX_KEEP_ALIVE_SECONDS} (SageMaker's longest warm pool)"
        )
    return TrainingPlan(
        target=target,
        base_job_name=base_job_name,
        hyperparameters=strings,
        metric_definitions=metrics.metric_definitions(
            strings.get("model", TrainSettings.model)  # the plug-in this job trains
        ),
        channels=channels,
        output_s3_uri=output,
        tensorboard_s3_uri=tensorboard,
        instance_type=instance_type,
        instance_count=instance_count,
        volume_size_gb=volume_size_gb,
        max_run_seconds=max_run_seconds,
        spot=spot,
        max_wait_seconds=max_wait_seconds,
        checkpoint_s3_uri=checkpoint,
        keep_alive_seconds=keep_alive_seconds or None,
        environment=tracking_environment(mlflow_tracking_uri, mlflow_experiment),
        distribution=distribution_types,
        input_mode=input_mode,
    )


# An MLflow tracking server the training container can reach: a URL, or the ARN of a
# SageMaker managed MLflow tracking server or app (read through the sagemaker-mlflow plug-in).
# CreateTrainingJob.Environment: values up to 512 characters (a model's take 1024).
MAX_TRAINING_ENV_VALUE = 512
_MLFLOW_URI = re.compile(r"^(https?://\S+|arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-\S+)$")


def tracking_environment(uri: str | None, experiment: str | None) -> dict[str, str]:
    """The job's MLFLOW_* variables: training logs to MLflow when the URI is set."""
    if not uri:
        if experiment:
            raise LauncherError("an MLflow experiment needs a tracking URI (--mlflow-tracking-uri)")
        return {}
    if not _MLFLOW_URI.match(uri):
        raise LauncherError(
            f"MLflow tracking URI {uri!r}: expected an http(s):// URL the training job can "
            "reach, or the ARN of a SageMaker managed MLflow tracking server "
            "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
        )
    env = {contract.MLFLOW_TRACKING_URI_ENV: uri}
    if experiment:
        env[contract.MLFLOW_EXPERIMENT_ENV] = experiment
    for name, value in env.items():
        if len(value) > MAX_TRAINING_ENV_VALUE:
            raise LauncherError(
                f"{name}: {len(value)} characters, a training job's environment takes at most "
                f"{MAX_TRAINING_ENV_VALUE} per value"
            )
    return env


def model_trainer(plan: TrainingPlan, boto_session: Any):
    """The SDK v3 ModelTrainer for a plan. Building it validates the role (see docs/launcher.md)."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        OutputDataConfig,
        StoppingCondition,
        TensorBoardOutputConfig,
    )
    from sagemaker.train import ModelTrainer

    sagemaker_session = Session(boto_session=boto_session)
    if is_dry_run(boto_session):
        from .dryrun import without_telemetry

        without_telemetry(sagemaker_session)
    trainer = ModelTrainer(
        sagemaker_session=sagemaker_session,
        role=plan.target.role,
        training_image=plan.target.image_uri,
        base_job_name=plan.base_job_name,
        hyperparameters=dict(plan.hyperparameters),
        environment=dict(plan.environment),
        input_data_config=channel_settings.sdk_channels(
            plan.channels, plan.distribution, plan.input_mode
        ),
        training_input_mode=plan.input_mode,
        compute=Compute(
            instance_type=plan.instance_type,
            instance_count=plan.instance_count,
            volume_size_in_gb=plan.volume_size_gb,
            enable_managed_spot_training=plan.spot or None,
            keep_alive_period_in_seconds=plan.keep_alive_seconds,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=plan.max_run_seconds,
            max_wait_time_in_seconds=plan.max_wait_seconds,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=plan.output_s3_uri, compression_type="GZIP"
        ),
        checkpoint_config=(
            CheckpointConfig(s3_uri=plan.checkpoint_s3_uri, local_path=plan.checkpoint_local_path)
            if plan.checkpoint_s3_uri
            else None
        ),
    )
    trainer.with_tensorboard_output_config(
        TensorBoardOutputConfig(
            s3_output_path=plan.tensorboard_s3_uri, local_path=plan.tensorboard_local_path
        )
    )
    trainer.with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in plan.metric_definitions]
    )
    return trainer


@takes_plan_arguments(plan_training)
def train(
    *,
    wait: bool = True,
    logs: bool = True,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
    boto_session: Any = None,
    **launch: Any,
) -> TrainingJobInfo:
    """Start a training job on our image; wait for it unless `wait=False`.

    `launch` takes the keyword arguments of `plan_training` (train=, validation=,
    hyperparameters=, spot=, ...). Returns the job's name, status, model.tar.gz URI and
    final metrics; raises JobFailed if it ends Failed or Stopped, WaitTimeout if it is
    still running after `timeout_seconds`.
    """
    plan = plan_training(boto_session=boto_session, **launch)
    session = boto_session or plan.target.boto_session()
    trainer = model_trainer(plan, session)
    trainer.train(wait=False, logs=False)
    # ModelTrainer keeps the job it created here (its own docstring reads it the same way).
    job = trainer._latest_training_job
    name = job.training_job_name
    say(f"training job {name} created in {plan.target.region}")
    if not wait or is_dry_run(session):
        return _info(job)
    return wait_for_training(
        name,
        boto_session=session,
        logs=logs,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )


def wait_for_training(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    logs: bool = True,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> TrainingJobInfo:
    """Follow a training job to its end, printing status changes and its log lines."""
    from sagemaker.core.resources import TrainingJob

    session = boto_session or resolve(region, boto_session=boto_session).boto_session()
    job = TrainingJob.get(training_job_name=name, session=session, region=session.region_name)
    follower = LogFollower(session.client("logs"), TRAINING_LOG_GROUP, f"{name}/") if logs else None

    def poll() -> Status:
        job.refresh()
        detail = str(job.secondary_status or "")
        transitions = list(job.secondary_status_transitions or [])
        if transitions and transitions[-1].status == job.secondary_status:
            message = str(transitions[-1].status_message or "")
            detail = f"{detail}: {message}" if message else detail
        return Status(str(job.training_job_status), detail)

    def stream() -> None:
        for line in follower.new_lines():
            say(line)

    final = wait_for(
        f"training job {name}",
        poll,
        TERMINAL,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_tick=stream if follower else None,
    )
    info = _info(job)
    if info.metrics:
        say("final metrics " + " ".join(f"{k}={v:g}" for k, v in sorted(info.metrics.items())))
    if final.state != "Completed":
        raise JobFailed(
            f"training job {name} ended {final.state}: {info.failure_reason or 'no reason given'}",
            info,
        )
    say(f"model: {info.model_data}")
    return info


def _info(job: Any) -> TrainingJobInfo:
    artifacts = job.model_artifacts
    return TrainingJobInfo(
        name=job.training_job_name,
        status=str(job.training_job_status),
        secondary_status=str(job.secondary_status) or None,
        model_data=(str(artifacts.s3_model_artifacts) or None) if artifacts else None,
        metrics={m.metric_name: m.value for m in (job.final_metric_data_list or [])},
        failure_reason=str(job.failure_reason) or None,
    )
