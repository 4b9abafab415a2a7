"""Endpoints: plan and deploy one (real-time, asynchronous or serverless), wait, delete.

`deploy` creates three SageMaker resources with the SDK v3's `sagemaker.core.resources`
(one API call each, nothing hidden): a Model (our image, the model.tar.gz, the serving
knobs and the mode as environment variables), an EndpointConfig (real-time instances,
asynchronous with an S3 output path, or serverless; data capture if asked) and the
Endpoint; once it is InService, its autoscaling (`autoscaling`). `delete` removes all of
it. Calling a deployed endpoint is `invoking`'s.

A multi-model endpoint is the same three resources, its Model in Mode MultiModel on an
S3 prefix (`multimodel`); an endpoint of inference components has a Model per component
(`components`), which `delete` removes with their components. `describe_endpoint` says
which of the three an endpoint is.

`sagemaker.serve.ModelBuilder` is not used: it builds and packages the serving side
itself, while this image already is the serving side; the resources map one to one to
the API calls this module wants to make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagemaker_platform import contract

from .autoscaling import ScalingPlan, apply_scaling, plan_scaling, remove_scaling
from .capture import CapturePlan, plan_capture
from .models import check_model_source, create_model, model_data_of
from .multimodel import CPU_IMAGE, check_cpu_instance, check_model_prefix
from .multimodel import DEFAULT_INSTANCE_TYPE as DEFAULT_MULTI_MODEL_INSTANCE_TYPE
from .params import serving_environment
from .rollback import Rollback
from .settings import (
    MAX_DESTINATION_S3_URI,
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
from .waiting import JobFailed, WaitTimeout, follow, say

DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
DEFAULT_NAME = "text-classifier"
VARIANT = "AllTraffic"
MODES = ("realtime", "async", "serverless")
# ProductionVariantServerlessConfig: 1024 to 6144 MB in 1 GB steps, 1 to 200 concurrent.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
# What the serving docs recommend for the shipped models (make bench-serverless measures
# yours); memory is what a serverless endpoint is billed by.
DEFAULT_SERVERLESS_MEMORY_MB = 2048
SERVERLESS_MAX_CONCURRENCY = 200


@dataclass(frozen=True)
class Deployment:
    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    mode: str
    status: str
    multi_model: bool = False


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything `deploy` sends, resolved and checked; no request has been made."""

    target: Target
    name: str  # of the model, the endpoint config and the endpoint
    mode: str
    environment: dict[str, str]
    training_job: str | None
    model_data: str | None  # a model.tar.gz; with multi_model, the prefix of many
    instance_type: str | None  # realtime and async
    instance_count: int | None
    serverless_memory_mb: int | None  # serverless
    serverless_max_concurrency: int | None
    async_output_s3_uri: str | None  # async
    async_failure_s3_uri: str | None
    async_max_concurrent_invocations: int | None
    scaling: ScalingPlan | None = None  # realtime and async, registered once InService
    capture: CapturePlan | None = None  # realtime and async
    tuning_job: str | None = None  # deploy its best trial's model
    multi_model: bool = False  # Mode MultiModel: model_data is the prefix it serves


def plan_deployment(
    *,
    training_job: str | None = None,
    model_data: str | None = None,
    tuning_job: str | None = None,
    name: str | None = None,
    mode: str = "realtime",
    instance_type: str | None = None,
    instance_count: int = 1,
    serving: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    async_output_s3_uri: str | None = None,
    async_failure_s3_uri: str | None = None,
    async_max_concurrent_invocations: int | None = None,
    serverless_memory_mb: int = DEFAULT_SERVERLESS_MEMORY_MB,
    serverless_max_concurrency: int = 5,
    min_instances: int | None = None,
    max_instances: int | None = None,
    target_invocations_per_instance: float | None = None,
    target_backlog_per_instance: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
    capture_s3_uri: str | None = None,
    capture_percent: int | None = None,
    capture_content_types: list[str] | None = None,
    multi_model: bool = False,
    model_prefix: str | None = None,
    region: str | None = None,
    role: str | None = None,
    image_uri: str | None = None,
    boto_session: Any = None,
) -> DeploymentPlan:
    """Check and resolve a deployment; raises LauncherError, sends nothing.

    Autoscaling (realtime and async): min_instances= and max_instances=, with
    target_invocations_per_instance= (realtime: requests per instance per minute) or
    target_backlog_per_instance= (async: queued requests per instance; min_instances=0
    lets it scale to zero), scale_in_cooldown= / scale_out_cooldown= in seconds (300).
    Data capture (realtime and async): capture_s3_uri=, capture_percent= (100) and
    capture_content_types= (CSV and JSON types kept as text; default text/csv,
    application/json, application/jsonlines).
    Multi-model (realtime, CPU instance types): multi_model=True with model_prefix= the
    S3 prefix of the model.tar.gz files it serves (s3://bucket/models/), instead of a
    training job or model data; instance_type defaults to ml.m5.xlarge for it (else
    ml.g5.xlarge).
    """
    target = resolve(
        region, role, image_uri, need_role=True, need_image=True, boto_session=boto_session
    )
    if mode not in MODES:
        raise LauncherError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if multi_model:
        _check_multi_model(training_job, model_data, tuning_job, mode)
        model_data = check_model_prefix(model_prefix)
        instance_type = instance_type or DEFAULT_MULTI_MODEL_INSTANCE_TYPE
    elif model_prefix:
        raise LauncherError(
            "a model prefix is a multi-model endpoint's: add --multi-model (multi_model=True)"
        )
    else:
        check_model_source(training_job, model_data, tuning_job)
    instance_type = instance_type or DEFAULT_INSTANCE_TYPE
    environment = serving_environment(serving, env, mode=mode, multi_model=multi_model)
    serverless = mode == "serverless"
    if serverless:
        if serverless_memory_mb not in SERVERLESS_MEMORY_MB:
            raise LauncherError(
                f"serverless memory {serverless_memory_mb} MB: expected one of "
                + ", ".join(map(str, SERVERLESS_MEMORY_MB))
            )
        if not 1 <= serverless_max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise LauncherError(
                f"serverless max concurrency {serverless_max_concurrency}: expected 1 to "
                f"{SERVERLESS_MAX_CONCURRENCY}"
            )
        workers = environment.get(contract.WORKERS_ENV, "").strip()
        if workers and workers != "1":
            raise LauncherError(
                f"{contract.WORKERS_ENV}={workers} (--workers): a serverless endpoint runs one "
                "worker, one copy of the model in the memory it is billed by; leave it out "
                "(it scales by concurrency: --serverless-max-concurrency)"
            )
    else:
        check_instance_type(instance_type, "endpoint")
        if multi_model:
            check_cpu_instance(instance_type)
        if not isinstance(instance_count, int) or instance_count < 1:
            raise LauncherError(f"instance count {instance_count!r}: expected a whole number >= 1")
    if mode == "async":
        limit = MAX_DESTINATION_S3_URI
        check_s3_uri(async_output_s3_uri, "async output", max_length=limit)
        check_s3_uri(async_failure_s3_uri, "async failure", required=False, max_length=limit)
    elif async_output_s3_uri or async_failure_s3_uri or async_max_concurrent_invocations:
        raise LauncherError("the async settings only apply to mode 'async'")
    return DeploymentPlan(
        target=target,
        name=check_name(name or timestamped(DEFAULT_NAME), "name"),
        mode=mode,
        environment=environment,
        training_job=training_job,
        model_data=model_data,
        instance_type=None if serverless else instance_type,
        instance_count=None if serverless else instance_count,
        serverless_memory_mb=serverless_memory_mb if serverless else None,
        serverless_max_concurrency=serverless_max_concurrency if serverless else None,
        async_output_s3_uri=async_output_s3_uri if mode == "async" else None,
        async_failure_s3_uri=async_failure_s3_uri if mode == "async" else None,
        async_max_concurrent_invocations=async_max_concurrent_invocations,
        scaling=plan_scaling(
            mode,
            None if serverless else instance_count,
            min_instances=min_instances,
            max_instances=max_instances,
            target_invocations_per_instance=target_invocations_per_instance,
            target_backlog_per_instance=target_backlog_per_instance,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        ),
        capture=plan_capture(mode, capture_s3_uri, capture_percent, capture_content_types),
        tuning_job=tuning_job,
        multi_model=multi_model,
    )


def _check_multi_model(
    training_job: str | None, model_data: str | None, tuning_job: str | None, mode: str
) -> None:
    if training_job or model_data or tuning_job:
        raise LauncherError(
            "a multi-model endpoint serves the model.tar.gz files under its prefix "
            "(--model-prefix): add models there with `add-model`, not with a training "
            "job, tuning job or model data"
        )
    if mode == "async":
        raise LauncherError(
            "a multi-model endpoint is invoked in real time: InvokeEndpointAsync takes no "
            "target model (drop --mode async)"
        )
    if mode == "serverless":
        raise LauncherError(
            "SageMaker does not host multi-model endpoints on serverless inference: "
            "deploy realtime on a CPU instance type"
        )


@takes_plan_arguments(plan_deployment)
def deploy(
    *,
    wait: bool = True,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
    boto_session: Any = None,
    **launch: Any,
) -> Deployment:
    """Model + endpoint config + endpoint from a training job (or a model.tar.gz URI).

    `launch` takes the keyword arguments of `plan_deployment`: training_job=,
    tuning_job= (its best trial) or model_data=, name=, mode= (realtime, async with async_output_s3_uri=, or serverless:
    CPU only), instance_type=, instance_count=, serving= (the server's knobs by
    ServeConfig field name: workers, max_batch_size, max_batch_delay_ms, precision, ...)
    and env= (further variables). The model, config and endpoint all take `name`
    (default text-classifier-<time>). Autoscaling is registered once the endpoint is
    InService, so it needs `wait` (else deploy, then `autoscale`).

    Leaves, on success, the model, endpoint config and endpoint named `name` (and its
    autoscaling): `delete(name)` removes them all. A failure deletes what this call
    created, in reverse order (`rollback.py`), except after a wait that timed out: the
    endpoint is still being created then.
    """
    plan = plan_deployment(boto_session=boto_session, **launch)
    if plan.scaling is not None and not wait:
        raise LauncherError(
            "autoscaling is registered once the endpoint is InService, so deploy must wait: "
            "drop --no-wait, or deploy without autoscaling and run `autoscale` when it is "
            "InService"
        )
    session = boto_session or plan.target.boto_session()
    training_job = plan.training_job
    if plan.tuning_job:
        from .tuning import best_training_job

        training_job = best_training_job(plan.tuning_job, session)
    model_data = plan.model_data or model_data_of(training_job, session)
    if plan.multi_model and not _is_cpu_image(plan.target.image_uri):
        say(f"note: a multi-model endpoint runs on CPU: {CPU_IMAGE} (its tag ends in -cpu)")
    with Rollback("deploy", session) as undo:
        status = _create(plan, model_data, session, undo, wait, poll_seconds, timeout_seconds)
    return Deployment(plan.name, plan.name, plan.name, plan.mode, status, plan.multi_model)


def _create(
    plan: DeploymentPlan,
    model_data: str,
    session: Any,
    undo: Rollback,
    wait: bool,
    poll_seconds: float,
    timeout_seconds: float | None,
) -> str:
    """Model, endpoint config, endpoint, autoscaling: each registered with `undo` first."""
    from sagemaker.core.resources import Endpoint, EndpointConfig

    sagemaker = session.client("sagemaker")
    name = plan.name
    undo.add(f"model {name}", lambda: sagemaker.delete_model(ModelName=name))
    create_model(
        plan.name,
        model_data=model_data,
        image_uri=plan.target.image_uri,
        role=plan.target.role,
        environment=plan.environment,
        boto_session=session,
        multi_model=plan.multi_model,
    )
    undo.add(
        f"endpoint config {name}",
        lambda: sagemaker.delete_endpoint_config(EndpointConfigName=name),
    )
    if plan.mode == "serverless":
        # sagemaker.core serializes ProductionVariantServerlessConfig.memory_size_in_mb as
        # "MemorySizeInMb", which CreateEndpointConfig rejects (aws/sagemaker-core#225):
        # the one request the SDK v3 cannot express, so it goes through boto3.
        session.client("sagemaker").create_endpoint_config(
            EndpointConfigName=plan.name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": plan.name,
                    "ServerlessConfig": {
                        "MemorySizeInMB": plan.serverless_memory_mb,
                        "MaxConcurrency": plan.serverless_max_concurrency,
                    },
                }
            ],
        )
    else:
        EndpointConfig.create(
            endpoint_config_name=plan.name,
            production_variants=[_instance_variant(plan)],
            async_inference_config=_async_config(plan),
            data_capture_config=plan.capture.shape() if plan.capture else None,
            session=session,
            region=plan.target.region,
        )
    say(f"endpoint config {plan.name} created ({plan.mode})")
    undo.add(f"endpoint {name}", lambda: sagemaker.delete_endpoint(EndpointName=name))
    endpoint = Endpoint.create(
        endpoint_name=plan.name,
        endpoint_config_name=plan.name,
        session=session,
        region=plan.target.region,
    )
    say(f"endpoint {plan.name} is {endpoint.endpoint_status}")
    status = str(endpoint.endpoint_status)
    if wait and not is_dry_run(session):  # a dry run's endpoint is InService at once
        try:
            status = wait_for_endpoint(
                plan.name,
                boto_session=session,
                poll_seconds=poll_seconds,
                timeout_seconds=timeout_seconds,
            )
        except WaitTimeout:
            if plan.scaling is not None:
                say(
                    f"autoscaling of {plan.name} not registered yet: run `autoscale` once InService"
                )
            raise
    if plan.scaling is not None:
        undo.add(
            f"autoscaling of endpoint {name}", lambda: remove_scaling(name, [VARIANT], session)
        )
        apply_scaling(plan.name, VARIANT, plan.scaling, session)
    return status


def _is_cpu_image(image_uri: str) -> bool:
    """build_and_push.sh --cpu tags the CPU image TAG-cpu."""
    tag = image_uri.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    return tag.endswith("-cpu")


def _instance_variant(plan: DeploymentPlan):
    from sagemaker.core.shapes import ProductionVariant

    return ProductionVariant(
        variant_name=VARIANT,
        model_name=plan.name,
        instance_type=plan.instance_type,
        initial_instance_count=plan.instance_count,
    )


def _async_config(plan: DeploymentPlan):
    if plan.mode != "async":
        return None
    from sagemaker.core.shapes import (
        AsyncInferenceClientConfig,
        AsyncInferenceConfig,
        AsyncInferenceOutputConfig,
    )

    client = None
    if plan.async_max_concurrent_invocations:
        client = AsyncInferenceClientConfig(
            max_concurrent_invocations_per_instance=plan.async_max_concurrent_invocations
        )
    return AsyncInferenceConfig(
        output_config=AsyncInferenceOutputConfig(
            s3_output_path=plan.async_output_s3_uri, s3_failure_path=plan.async_failure_s3_uri
        ),
        client_config=client,
    )


def wait_for_endpoint(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> str:
    """Follow an endpoint until InService (returned) or Failed (JobFailed)."""
    from sagemaker.core.resources import Endpoint

    session = boto_session or resolve(region).boto_session()
    endpoint = Endpoint.get(endpoint_name=name, session=session, region=session.region_name)
    final = follow(
        f"endpoint {name}",
        endpoint,
        "endpoint_status",
        ("InService", "Failed", "OutOfService"),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    if final.state != "InService":
        raise JobFailed(f"endpoint {name} is {final.state}: {final.detail or 'no reason given'}")
    return final.state


def autoscale(
    endpoint_name: str,
    *,
    min_instances: int | None = None,
    max_instances: int | None = None,
    target_invocations_per_instance: float | None = None,
    target_backlog_per_instance: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> list[str]:
    """Autoscale an existing endpoint (e.g. one deployed with wait=False), replacing any
    autoscaling it had: waits until it is InService, then registers each variant as
    `deploy` would (the keyword arguments of `plan_deployment`'s autoscaling).

    Returns what was put, e.g. ["scalable target endpoint/x/variant/AllTraffic", ...].
    """
    target = resolve(region, boto_session=boto_session)
    session = boto_session or target.boto_session()
    sagemaker = session.client("sagemaker")
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variants = config["ProductionVariants"]
    if any(v.get("ServerlessConfig") for v in variants):
        mode = "serverless"
    else:
        mode = "async" if config.get("AsyncInferenceConfig") else "realtime"
    plan = plan_scaling(
        mode,
        None,  # a running endpoint: its count moves into the range by itself
        min_instances=min_instances,
        max_instances=max_instances,
        target_invocations_per_instance=target_invocations_per_instance,
        target_backlog_per_instance=target_backlog_per_instance,
        scale_in_cooldown=scale_in_cooldown,
        scale_out_cooldown=scale_out_cooldown,
    )
    if plan is None:
        raise LauncherError("autoscale: give min and max instances and a target")
    wait_for_endpoint(
        endpoint_name,
        boto_session=session,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    names = [v["VariantName"] for v in variants]
    for line in remove_scaling(endpoint_name, names, session):
        say(f"replaced {line}")
    done: list[str] = []
    for name in names:
        done += apply_scaling(endpoint_name, name, plan, session)
    return done


def delete(
    endpoint_name: str,
    *,
    keep_model: bool = False,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 10.0,
    timeout_seconds: float | None = 1800.0,
) -> list[str]:
    """Delete an endpoint's autoscaling, the endpoint, its endpoint config and (unless
    `keep_model`) its models.

    Returns what was deleted, e.g. ["endpoint x", "endpoint config x", "model x"], after
    any "scaling policy ...", "scalable target ..." and "alarm ..." entries. An endpoint
    of inference components loses its components first (each as `delete_component`:
    autoscaling, component, model), and is deleted once they are gone (polled every
    `poll_seconds`). A multi-model endpoint's model.tar.gz files stay under its prefix.
    """
    from botocore.exceptions import ClientError
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model

    target = resolve(region, boto_session=boto_session)
    session = boto_session or target.boto_session()
    where = {"session": session, "region": target.region}
    endpoint = Endpoint.get(endpoint_name=endpoint_name, **where)
    config_name = str(endpoint.endpoint_config_name)
    models: list[str] = []
    try:
        config = EndpointConfig.get(endpoint_config_name=config_name, **where)
        models = [str(v.model_name) for v in config.production_variants or [] if v.model_name]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":  # already gone
            raise
        config = None
    variants = [str(v.variant_name) for v in (config.production_variants or [])] if config else []
    # Autoscaling first: a target left behind would outlive its endpoint.
    try:
        deleted = remove_scaling(endpoint_name, variants or [VARIANT], session)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AccessDeniedException", "AccessDenied"):
            raise
        say(f"autoscaling of {endpoint_name} not checked (no permission): {exc}")
        deleted = []
    if config is not None and variants and not models:  # an endpoint of components
        deleted += _delete_components(
            endpoint_name, keep_model, session, poll_seconds, timeout_seconds
        )
    endpoint.delete()
    deleted.append(f"endpoint {endpoint_name}")
    if config is not None:
        config.delete()
        deleted.append(f"endpoint config {config_name}")
    kept: list[str] = []
    for model_name in [] if keep_model else models:
        try:
            model = Model.get(model_name=model_name, **where)
            container = model.primary_container
            if container and str(container.mode) == "MultiModel":
                kept.append(str(container.model_data_url))
            model.delete()
            deleted.append(f"model {model_name}")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ValidationException":
                raise
    for line in deleted:
        say(f"deleted {line}")
    for prefix in kept:
        say(f"left the model.tar.gz files under {prefix} as they are (delete them in S3)")
    return deleted


def _delete_components(
    endpoint_name: str,
    keep_model: bool,
    session: Any,
    poll_seconds: float,
    timeout_seconds: float | None,
) -> list[str]:
    """Delete the inference components on an endpoint; returns once they are gone."""
    from .components import components_on, remove_component, wait_until_deleted

    sagemaker = session.client("sagemaker")
    names = components_on(endpoint_name, session)
    deleted: list[str] = []
    for name in names:
        described = sagemaker.describe_inference_component(InferenceComponentName=name)
        deleted += remove_component(name, described, keep_model, session)
    if names and not is_dry_run(session):
        wait_until_deleted(
            names, session, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds
        )
    return deleted


# --- describe -----------------------------------------------------------------------------
SINGLE_MODEL = "single model"
MULTI_MODEL = "multi-model"
COMPONENTS = "inference components"


@dataclass(frozen=True)
class EndpointDescription:
    """What an endpoint hosts, and how: `hosting` is SINGLE_MODEL, MULTI_MODEL or COMPONENTS."""

    name: str
    status: str
    config_name: str
    mode: str  # realtime, async or serverless
    hosting: str
    variants: list[str]  # "AllTraffic: ml.m5.xlarge x 1, model x", one line each
    model_prefix: str | None = None  # multi-model: the S3 prefix its models are under
    components: list[tuple[str, str]] | None = None  # (name, status) of each component

    def lines(self) -> list[str]:
        head = f"endpoint {self.name}: {self.status} ({self.mode}, {self.hosting})"
        out = [head] + [f"  variant {v}" for v in self.variants]
        if self.model_prefix:
            out.append(
                f"  models: the model.tar.gz files under {self.model_prefix} (invoke one "
                "with --target-model KEY, add one with add-model)"
            )
        for name, status in self.components or []:
            out.append(f"  component {name}: {status}")
        if self.components == []:
            out.append("  no components yet (deploy --component NAME --endpoint ...)")
        return out


def describe_endpoint(
    endpoint_name: str, *, region: str | None = None, boto_session: Any = None
) -> EndpointDescription:
    """What `endpoint_name` hosts (one model, many under a prefix, or inference
    components), its mode and variants; reads only."""
    check_name(endpoint_name, "endpoint name")
    session = boto_session or resolve(region, boto_session=boto_session).boto_session()
    sagemaker = session.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config_name = endpoint["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variants = config["ProductionVariants"]
    if any(v.get("ServerlessConfig") for v in variants):
        mode = "serverless"
    else:
        mode = "async" if config.get("AsyncInferenceConfig") else "realtime"
    lines, prefix = [], None
    for variant in variants:
        where = (
            f"serverless {variant['ServerlessConfig']['MemorySizeInMB']} MB"
            if variant.get("ServerlessConfig")
            else f"{variant.get('InstanceType')} x {variant.get('InitialInstanceCount')}"
        )
        model_name = variant.get("ModelName")
        if model_name:
            container = sagemaker.describe_model(ModelName=model_name).get("PrimaryContainer", {})
            if container.get("Mode") == "MultiModel":
                prefix = container.get("ModelDataUrl")
            where += f", model {model_name}"
        lines.append(f"{variant['VariantName']}: {where}")
    components = None
    if not any(v.get("ModelName") for v in variants):
        pages = sagemaker.get_paginator("list_inference_components").paginate(
            EndpointNameEquals=endpoint_name
        )
        components = [
            (c["InferenceComponentName"], c.get("InferenceComponentStatus", "?"))
            for page in pages
            for c in page["InferenceComponents"]
        ]
    hosting = COMPONENTS if components is not None else MULTI_MODEL if prefix else SINGLE_MODEL
    return EndpointDescription(
        name=endpoint_name,
        status=str(endpoint.get("EndpointStatus")),
        config_name=config_name,
        mode=mode,
        hosting=hosting,
        variants=lines,
        model_prefix=prefix,
        components=components,
    )


def delete_model(model_name: str, *, region: str | None = None, boto_session: Any = None) -> str:
    """Delete one model (one `transform` created, say); an endpoint serving it keeps
    running on what it already loaded. Returns "model NAME"."""
    check_name(model_name, "model name")
    session = boto_session or resolve(region, boto_session=boto_session).boto_session()
    session.client("sagemaker").delete_model(ModelName=model_name)
    say(f"deleted model {model_name}")
    return f"model {model_name}"
