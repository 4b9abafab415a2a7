"""The SageMaker Model both deploy and transform create: our image and a model.tar.gz.

A Model is our image serving a training job's model.tar.gz (or any model.tar.gz URI),
with the serving knobs as environment variables; `endpoints.deploy` puts one behind an
endpoint and `batch.transform` runs one over an S3 prefix.
"""

from __future__ import annotations

from typing import Any

from .settings import LauncherError, check_s3_uri
from .waiting import say


def model_data_of(training_job: str, boto_session: Any) -> str:
    """The model.tar.gz of a completed training job."""
    return trained_model(training_job, boto_session)[0]


def trained_model(training_job: str, boto_session: Any) -> tuple[str, str | None]:
    """(model.tar.gz, plug-in name) of a completed training job. The plug-in is its
    `model` hyperparameter (the image's default when the job set others but not that
    one), or None when the job's hyperparameters are not known."""
    from sagemaker.core.resources import TrainingJob

    from sagemaker_platform.config import TrainSettings

    job = TrainingJob.get(
        training_job_name=training_job, session=boto_session, region=boto_session.region_name
    )
    if str(job.training_job_status) != "Completed":
        raise LauncherError(
            f"training job {training_job} is {job.training_job_status}: its model.tar.gz "
            "exists once the job has Completed"
        )
    hyperparameters = job.hyper_parameters
    plugin = (
        hyperparameters.get("model", TrainSettings.model)
        if isinstance(hyperparameters, dict)
        else None
    )
    return str(job.model_artifacts.s3_model_artifacts), plugin


def create_model(
    name: str,
    *,
    model_data: str,
    image_uri: str,
    role: str,
    environment: dict[str, str],
    boto_session: Any,
    multi_model: bool = False,
):
    """A SageMaker Model: our image serving `model_data` with `environment`; with
    `multi_model`, Mode MultiModel and `model_data` the S3 prefix of its model.tar.gz files."""
    from sagemaker.core.resources import Model
    from sagemaker.core.shapes import ContainerDefinition

    model = Model.create(
        model_name=name,
        primary_container=ContainerDefinition(
            image=image_uri,
            model_data_url=model_data,
            environment=environment or None,
            mode="MultiModel" if multi_model else None,
        ),
        execution_role_arn=role,
        session=boto_session,
        region=boto_session.region_name,
    )
    kind = "multi-model, serving the model.tar.gz files under" if multi_model else "from"
    say(f"model {name} created {kind} {model_data}")
    return model


def check_model_source(
    training_job: str | None, model_data: str | None, tuning_job: str | None = None
) -> None:
    if sum(map(bool, (training_job, model_data, tuning_job))) != 1:
        raise LauncherError(
            "give exactly one of a training job name, a tuning job name (its best trial) "
            "or a model.tar.gz S3 URI"
        )
    if model_data:
        check_s3_uri(model_data, "model data")
