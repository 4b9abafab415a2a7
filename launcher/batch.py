"""Batch transform: every record of an S3 prefix through the model.

JSON Lines and CSV hold a record per line: SageMaker splits each input object at
newlines (SplitType Line), packs as many lines as fit in MaxPayloadInMB into one request
(MultiRecord), sends up to MaxConcurrentTransforms requests to each instance at once,
and joins the answers line for line (AssembleWith Line) under the output prefix. Any
other content type the plug-in reads (image/png, application/x-npy, a JSON document) is
one record per S3 object: no split (SplitType None), one object per request
(SingleRecord), each answer written as it is (AssembleWith None) to `<object>.out`;
MaxPayloadInMB must then hold the largest object. The launcher sets the limits
explicitly, to the values the container's GET /execution-parameters reports.

SageMaker can also keep each input record next to its answer (DataProcessing): an input
filter picks what the model sees (`$[1:]`: all CSV columns but the first, an id), the
join source `Input` appends the answer to the whole input record (CSV: its columns after
the input's; JSON: a `SageMakerOutput` field), and an output filter picks what is written
(`$[0,-1]`: the id and the last column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagemaker_platform import codecs, contract

from . import payloads
from .models import check_model_source, create_model, trained_model
from .params import TransformLimits, serving_environment, transform_limits
from .rollback import Rollback
from .settings import (
    LauncherError,
    Target,
    check_instance_type,
    check_name,
    check_s3_uri,
    is_dry_run,
    resolve,
    takes_plan_arguments,
    timestamped,
)
from .waiting import JobFailed, follow, say

DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
DEFAULT_NAME = "text-classifier-batch"
# Line-oriented formats: SplitType Line cuts the input at newlines. Any other type is
# one record per S3 object.
LINE_TYPES = payloads.LINE_TYPES
# What DataProcessing's filters and joins read: CSV and JSON records.
RECORD_TYPES = (payloads.JSON, payloads.JSONLINES, payloads.CSV)
# CreateTransformJob accepts at most 16 environment variables.
MAX_ENVIRONMENT = 16
TERMINAL = ("Completed", "Failed", "Stopped")
JOIN_SOURCES = ("None", "Input")
MAX_FILTER_LENGTH = 63  # DataProcessing's InputFilter and OutputFilter


@dataclass(frozen=True)
class TransformPlan:
    target: Target
    name: str  # of the transform job (and of the model, when it creates one)
    model_name: str | None  # an existing model, or None to create one
    training_job: str | None
    model_data: str | None
    input_s3_uri: str
    output_s3_uri: str
    content_type: str
    accept: str
    instance_type: str
    instance_count: int
    environment: dict[str, str]
    limits: TransformLimits
    input_filter: str | None = None  # DataProcessing, each None when not set
    join_source: str | None = None
    output_filter: str | None = None
    plugin: str | None = None  # the plug-in's name, when given: types checked against it

    @property
    def split_type(self) -> str:
        """Line for JSON Lines and CSV; None (one record per S3 object) otherwise."""
        return "Line" if payloads.is_line_type(self.content_type) else "None"

    @property
    def assemble_with(self) -> str:
        """Answers joined line for line, or each object's answer written as it is."""
        return self.split_type


@dataclass(frozen=True)
class TransformJobInfo:
    name: str
    status: str
    output_s3_uri: str
    failure_reason: str | None = None


def plan_transform(
    *,
    input_s3_uri: str,
    output_s3_uri: str,
    model_name: str | None = None,
    training_job: str | None = None,
    model_data: str | None = None,
    content_type: str = "application/jsonlines",
    accept: str | None = None,
    model: str | None = None,
    name: str | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = 1,
    max_concurrent_transforms: int | None = None,
    max_payload_mb: int | None = None,
    serving: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    input_filter: str | None = None,
    join_source: str | None = None,
    output_filter: str | None = None,
    region: str | None = None,
    role: str | None = None,
    image_uri: str | None = None,
    boto_session: Any = None,
) -> TransformPlan:
    """Check and resolve a transform job; raises LauncherError, sends nothing.

    Give `model_name` (an existing SageMaker model, e.g. one `deploy` made) or a
    `training_job` / `model_data` to create a model first (then role and image are needed).
    `input_filter`, `join_source` ("Input" or "None") and `output_filter` are SageMaker's
    DataProcessing: keep ids and other columns next to each answer.

    `content_type` is any type the plug-in reads: JSON Lines and CSV are split at
    newlines, anything else is one record per S3 object. `accept` defaults to the
    input's type for JSON Lines and CSV, else to the plug-in's first answer type (JSON
    when the plug-in is not known). `model`, the plug-in's name, checks both against the
    types it declares; from a training job the job's own `model` hyperparameter is
    checked too, before the model is created.
    """
    creates_model = model_name is None
    target = resolve(
        region,
        role,
        image_uri,
        need_role=creates_model,
        need_image=creates_model,
        boto_session=boto_session,
    )
    if creates_model:
        check_model_source(training_job, model_data)
    elif training_job or model_data:
        raise LauncherError("give a model name, or a training job / model.tar.gz, not both")
    else:
        check_name(model_name, "model name")
    check_s3_uri(input_s3_uri, "transform input")
    check_s3_uri(output_s3_uri, "transform output")
    check_instance_type(instance_type, "transform")
    content_type = payloads.check_content_type(content_type)
    lines = payloads.is_line_type(content_type)
    if accept is None:
        accept = content_type if lines else _default_accept(model)
    accept = payloads.check_content_type(accept, "accept")
    if lines and not payloads.is_line_type(accept):
        # MultiRecord sends many lines per request and AssembleWith Line joins the answers
        # line for line: one answer line per input line.
        raise LauncherError(
            f"accept {accept!r}: {content_type} input is split into lines and answered "
            f"line for line, so the answers must be {' or '.join(LINE_TYPES)}"
        )
    if model is not None:
        payloads.check_plugin_takes(model, content_type)
        payloads.check_plugin_answers(model, accept)
    if not isinstance(instance_count, int) or instance_count < 1:
        raise LauncherError(f"instance count {instance_count!r}: expected a whole number >= 1")
    # SageMaker sets the payload limit in the container from MaxPayloadInMB.
    environment = serving_environment(serving, env, sagemaker_sets=(contract.MAX_PAYLOAD_ENV,))
    if len(environment) > MAX_ENVIRONMENT:
        raise LauncherError(
            f"{len(environment)} environment variables: a transform job takes at most "
            f"{MAX_ENVIRONMENT}"
        )
    limits = transform_limits(
        instance_type,
        environment,
        region=target.region,
        max_concurrent_transforms=max_concurrent_transforms,
        max_payload_mb=max_payload_mb,
        batch_strategy="MULTI_RECORD" if lines else "SINGLE_RECORD",
    )
    _check_record_types(content_type, accept, input_filter, join_source, output_filter)
    join_source = _join_source(join_source, content_type, accept)
    return TransformPlan(
        target=target,
        name=check_name(name or timestamped(DEFAULT_NAME), "transform job name"),
        model_name=model_name,
        training_job=training_job,
        model_data=model_data,
        input_s3_uri=input_s3_uri,
        output_s3_uri=output_s3_uri,
        content_type=content_type,
        accept=accept,
        instance_type=instance_type,
        instance_count=instance_count,
        environment=environment,
        limits=limits,
        input_filter=_check_filter(input_filter, "input filter"),
        join_source=join_source,
        output_filter=_check_filter(output_filter, "output filter"),
        plugin=model,
    )


def _default_accept(plugin: str | None) -> str:
    """The answer type of one-record-per-object input: the plug-in's first, else JSON."""
    if plugin is None:
        return payloads.JSON
    return payloads.plugin_types(plugin)[1][0]


def _check_record_types(
    content_type: str,
    accept: str,
    input_filter: str | None,
    join_source: str | None,
    output_filter: str | None,
) -> None:
    """DataProcessing reads CSV and JSON records: refuse its settings on anything else."""
    joins = join_source is not None and str(join_source).lower() != "none"
    for what, value, kind in (
        ("an input filter", input_filter, content_type),
        ("a join source", join_source if joins else None, content_type),
        ("an output filter", output_filter, accept),
    ):
        if value is not None and codecs.media_type(kind) not in RECORD_TYPES:
            raise LauncherError(
                f"{what} reads CSV or JSON records, and {kind} is neither: leave "
                "--input-filter, --join-source and --output-filter out"
            )


def _join_source(value: str | None, content_type: str, accept: str) -> str | None:
    if value is None:
        return None
    spelled = {s.lower(): s for s in JOIN_SOURCES}.get(str(value).lower())
    if spelled is None:
        raise LauncherError(f"join source {value!r}: expected {' or '.join(JOIN_SOURCES)}")
    if spelled == "Input" and accept != content_type:
        # CSV joins append columns, JSON joins add a field: one format in and out.
        raise LauncherError(
            f"join source Input joins each answer to its input record, so the answers must "
            f"be {content_type} like the input, not {accept}"
        )
    return spelled


def _check_filter(expression: str | None, what: str) -> str | None:
    """A JSONPath as DataProcessing takes it: `$`, `$[1:]`, `$[0,-1]`, `$.features`,
    `$['id','SageMakerOutput']`. Checked for its shape only; SageMaker parses it."""
    if expression is None:
        return None
    if not isinstance(expression, str) or not expression.strip():
        raise LauncherError(f"{what}: an empty JSONPath; `$` selects the whole record")
    if not expression.startswith("$"):
        raise LauncherError(f"{what} {expression!r}: a JSONPath starts with `$`, e.g. `$[1:]`")
    if len(expression) > MAX_FILTER_LENGTH:
        raise LauncherError(
            f"{what} {expression!r}: {len(expression)} characters, SageMaker takes at most "
            f"{MAX_FILTER_LENGTH}"
        )
    depth = 0
    for char in expression:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            break
    if depth != 0 or expression.count("'") % 2 or expression.count('"') % 2:
        raise LauncherError(f"{what} {expression!r}: unbalanced brackets or quotes")
    return expression


@takes_plan_arguments(plan_transform)
def transform(
    *,
    wait: bool = True,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
    boto_session: Any = None,
    **launch: Any,
) -> TransformJobInfo:
    """Run a batch transform job; `launch` takes the keyword arguments of `plan_transform`.

    Leaves, on success, the transform job (a record) and its answers under the output
    prefix; from a training job or model.tar.gz also the model it created, named as the
    job: reuse it (model_name=), or remove it (`endpoints.delete_model`). A failure
    deletes that model again (`rollback.py`), except after a wait that timed out: the
    job still runs on it then.
    """
    plan = plan_transform(boto_session=boto_session, **launch)
    session = boto_session or plan.target.boto_session()
    with Rollback("transform", session) as undo:
        info = _run(plan, session, undo, wait, poll_seconds, timeout_seconds)
    if plan.model_name is None and not is_dry_run(session):
        say(
            f"model {plan.name} stays: run the next transform with --model-name {plan.name}, "
            f"or remove it with `delete --model {plan.name}`"
        )
    return info


def _run(
    plan: TransformPlan,
    session: Any,
    undo: Rollback,
    wait: bool,
    poll_seconds: float,
    timeout_seconds: float | None,
) -> TransformJobInfo:
    from sagemaker.core.resources import TransformJob
    from sagemaker.core.shapes import (
        DataProcessing,
        TransformDataSource,
        TransformInput,
        TransformOutput,
        TransformResources,
        TransformS3DataSource,
    )

    model_name = plan.model_name
    if model_name is None:
        model_name = plan.name
        model_data = plan.model_data
        if model_data is None:
            model_data, trained_with = trained_model(plan.training_job, session)
            _check_trained_plugin(plan, trained_with)
        sagemaker = session.client("sagemaker")
        undo.add(f"model {model_name}", lambda: sagemaker.delete_model(ModelName=model_name))
        create_model(
            model_name,
            model_data=model_data,
            image_uri=plan.target.image_uri,
            role=plan.target.role,
            environment={},  # the serving settings travel on the transform job
            boto_session=session,
        )
    limits = plan.limits
    job = TransformJob.create(
        transform_job_name=plan.name,
        model_name=model_name,
        transform_input=TransformInput(
            data_source=TransformDataSource(
                s3_data_source=TransformS3DataSource(
                    s3_data_type="S3Prefix", s3_uri=plan.input_s3_uri
                )
            ),
            content_type=plan.content_type,
            split_type=plan.split_type,
        ),
        transform_output=TransformOutput(
            s3_output_path=plan.output_s3_uri,
            accept=plan.accept,
            assemble_with=plan.assemble_with,
        ),
        transform_resources=TransformResources(
            instance_type=plan.instance_type, instance_count=plan.instance_count
        ),
        max_concurrent_transforms=limits.max_concurrent_transforms,
        max_payload_in_mb=limits.max_payload_in_mb,
        batch_strategy=limits.api_batch_strategy,
        environment=plan.environment or None,
        data_processing=_data_processing(plan, DataProcessing),
        session=session,
        region=plan.target.region,
    )
    say(
        f"transform job {plan.name} created: {limits.max_concurrent_transforms} concurrent "
        f"x {limits.max_payload_in_mb} MB, {limits.batch_strategy}, split {plan.split_type}, "
        f"{plan.content_type}"
        + "".join(
            f", {name} {value}"
            for name, value in (
                ("input filter", plan.input_filter),
                ("join source", plan.join_source),
                ("output filter", plan.output_filter),
            )
            if value is not None
        )
    )
    info = _info(job, plan.output_s3_uri)
    if not wait or is_dry_run(session):
        return info
    return wait_for_transform(
        plan.name,
        boto_session=session,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )


def _check_trained_plugin(plan: TransformPlan, trained_with: str | None) -> None:
    """The training job's plug-in must read the input (and write the answers) asked for;
    checked before the model is created. Not checked when the job's hyperparameters are
    unknown, or its plug-in is not importable here (one kept on another machine's
    PYTHONPATH): the server answers a type it does not take with a 415."""
    if trained_with is None:
        return
    if plan.plugin is not None and plan.plugin != trained_with:
        raise LauncherError(
            f"--model {plan.plugin}, but training job {plan.training_job} trained "
            f"model={trained_with}"
        )
    try:
        payloads.plugin_types(trained_with)
    except LauncherError as exc:
        say(f"content types not checked, training job {plan.training_job}: {exc}")
        return
    payloads.check_plugin_takes(trained_with, plan.content_type)
    payloads.check_plugin_answers(trained_with, plan.accept)


def _data_processing(plan: TransformPlan, shape: Any):
    given = {
        "input_filter": plan.input_filter,
        "join_source": plan.join_source,
        "output_filter": plan.output_filter,
    }
    given = {key: value for key, value in given.items() if value is not None}
    return shape(**given) if given else None


def wait_for_transform(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> TransformJobInfo:
    from sagemaker.core.resources import TransformJob

    session = boto_session or resolve(region).boto_session()
    job = TransformJob.get(transform_job_name=name, session=session, region=session.region_name)
    final = follow(
        f"transform job {name}",
        job,
        "transform_job_status",
        TERMINAL,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    info = _info(job, str(job.transform_output.s3_output_path))
    if final.state != "Completed":
        raise JobFailed(f"transform job {name} ended {final.state}: {final.detail}", info)
    return info


def _info(job: Any, output: str) -> TransformJobInfo:
    return TransformJobInfo(
        name=str(job.transform_job_name),
        status=str(job.transform_job_status),
        output_s3_uri=output,
        failure_reason=str(job.failure_reason or "") or None,
    )
