"""Inference components: many models on one endpoint, each with its own copies and reservations.

An endpoint built for components has an endpoint config with an execution role and an
instance-based variant that names no model. Each component then brings its own Model
(this image and a model.tar.gz), the compute each copy reserves (CPU cores, memory,
accelerators) and a number of copies; SageMaker places the copies on the variant's
instances and routes `InvokeEndpoint` with `InferenceComponentName` to one of them.
Components scale one by one, by copies (`autoscaling.plan_component_scaling`); the
endpoint's managed instance scaling adds and removes instances as the copies need.

`deploy_component` creates the component's Model, then the component on an existing
endpoint, or first the endpoint itself (`create_endpoint=True`); `delete_component`
removes a component's autoscaling, the component and its Model; the endpoint stays.

The calls go through boto3, one request each: the SDK v3 resources add a describe after
every create, which tells nothing here that the wait does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .autoscaling import (
    ScalingPlan,
    apply_component_scaling,
    plan_component_scaling,
    remove_component_scaling,
)
from .endpoints import DEFAULT_INSTANCE_TYPE, VARIANT, wait_for_endpoint
from .models import check_model_source, create_model, model_data_of
from .params import serving_environment
from .settings import (
    LauncherError,
    Target,
    check_instance_type,
    check_name,
    is_accelerated,
    is_dry_run,
    resolve,
    takes_plan_arguments,
)
from .waiting import JobFailed, Status, say, wait_for

# InferenceComponentComputeResourceRequirements: at least 128 MB, 0.25 cores, 1 device.
MIN_MEMORY_MB = 128
MIN_CPUS = 0.25


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint to create for components: its instances, and their managed scaling."""

    instance_type: str
    instance_count: int
    min_instances: int | None = None  # ManagedInstanceScaling, when both are given
    max_instances: int | None = None

    def variant(self) -> dict[str, Any]:
        variant: dict[str, Any] = {
            "VariantName": VARIANT,
            "InstanceType": self.instance_type,
            "InitialInstanceCount": self.instance_count,
        }
        if self.min_instances is not None:
            variant["ManagedInstanceScaling"] = {
                "Status": "ENABLED",
                "MinInstanceCount": self.min_instances,
                "MaxInstanceCount": self.max_instances,
            }
        return variant


@dataclass(frozen=True)
class ComponentPlan:
    """Everything `deploy_component` sends, checked; no request has been made."""

    target: Target
    name: str  # of the component and of its Model
    endpoint: str
    environment: dict[str, str]
    training_job: str | None
    model_data: str | None
    tuning_job: str | None
    copies: int
    memory_mb: int
    cpus: float | None
    accelerators: int | None
    scaling: ScalingPlan | None = None
    new_endpoint: NewEndpoint | None = None

    def specification(self) -> dict[str, Any]:
        """CreateInferenceComponent's Specification: the Model and what each copy reserves."""
        needs: dict[str, Any] = {"MinMemoryRequiredInMb": self.memory_mb}
        if self.cpus is not None:
            needs["NumberOfCpuCoresRequired"] = self.cpus
        if self.accelerators is not None:
            needs["NumberOfAcceleratorDevicesRequired"] = self.accelerators
        return {"ModelName": self.name, "ComputeResourceRequirements": needs}


@dataclass(frozen=True)
class ComponentDeployment:
    name: str
    endpoint_name: str
    model_name: str
    status: str
    endpoint_created: bool = False


def plan_component(
    *,
    name: str,
    endpoint: str,
    training_job: str | None = None,
    model_data: str | None = None,
    tuning_job: str | None = None,
    copies: int = 1,
    memory_mb: int | None = None,
    cpus: float | None = None,
    accelerators: int | None = None,
    serving: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    min_copies: int | None = None,
    max_copies: int | None = None,
    target_invocations_per_copy: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
    create_endpoint: bool = False,
    instance_type: str | None = None,
    instance_count: int | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    region: str | None = None,
    role: str | None = None,
    image_uri: str | None = None,
    boto_session: Any = None,
) -> ComponentPlan:
    """Check and resolve an inference component; raises LauncherError, sends nothing.

    Each copy reserves memory_mb= (required, at least 128), and cpus= (cores, at least
    0.25) and accelerators= (GPUs or other devices) when given. Autoscaling by copies:
    min_copies=, max_copies=, target_invocations_per_copy= (requests per copy per minute).
    create_endpoint=True creates `endpoint` for components first: instance_type= (default
    ml.g5.xlarge), instance_count= (1), and min_instances= with max_instances= for its
    managed instance scaling.
    """
    target = resolve(
        region, role, image_uri, need_role=True, need_image=True, boto_session=boto_session
    )
    check_name(name, "component name")
    check_name(endpoint, "endpoint name")
    check_model_source(training_job, model_data, tuning_job)
    environment = serving_environment(serving, env, mode="realtime")
    _check_whole(copies, "copies", 1)
    if memory_mb is None:
        raise LauncherError(
            "a component reserves memory for each copy: give --memory-mb (memory_mb=), at "
            f"least {MIN_MEMORY_MB}, e.g. 2048"
        )
    _check_whole(memory_mb, "memory MB", MIN_MEMORY_MB)
    if cpus is not None and (
        isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus >= MIN_CPUS
    ):
        raise LauncherError(f"cpus {cpus!r}: expected a number of cores >= {MIN_CPUS}")
    if accelerators is not None:
        _check_whole(accelerators, "accelerators", 1)
    new_endpoint = None
    if create_endpoint:
        new_endpoint = _new_endpoint(instance_type, instance_count, min_instances, max_instances)
        if accelerators and not is_accelerated(new_endpoint.instance_type):
            raise LauncherError(
                f"accelerators {accelerators}: instance type {new_endpoint.instance_type} "
                "has none (a GPU type is ml.g*, ml.p*)"
            )
    elif any(v is not None for v in (instance_type, instance_count, min_instances, max_instances)):
        raise LauncherError(
            "instance type, count and min/max instances are the endpoint's, set when it is "
            "created: add --create-endpoint (create_endpoint=True), or leave them out to "
            f"deploy onto endpoint {endpoint} as it is"
        )
    return ComponentPlan(
        target=target,
        name=name,
        endpoint=endpoint,
        environment=environment,
        training_job=training_job,
        model_data=model_data,
        tuning_job=tuning_job,
        copies=copies,
        memory_mb=memory_mb,
        cpus=float(cpus) if cpus is not None else None,
        accelerators=accelerators,
        scaling=plan_component_scaling(
            copies,
            min_copies=min_copies,
            max_copies=max_copies,
            target_invocations_per_copy=target_invocations_per_copy,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        ),
        new_endpoint=new_endpoint,
    )


def _check_whole(value: Any, what: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise LauncherError(f"{what} {value!r}: expected a whole number >= {least}")


def _new_endpoint(
    instance_type: str | None,
    instance_count: int | None,
    min_instances: int | None,
    max_instances: int | None,
) -> NewEndpoint:
    instance_type = check_instance_type(instance_type or DEFAULT_INSTANCE_TYPE, "endpoint")
    count = 1 if instance_count is None else instance_count
    _check_whole(count, "instance count", 1)
    if (min_instances is None) != (max_instances is None):
        raise LauncherError(
            "managed instance scaling needs both min and max instances (--min-instances, "
            "--max-instances)"
        )
    if min_instances is not None:
        _check_whole(min_instances, "min instances", 1)
        _check_whole(max_instances, "max instances", 1)
        if not min_instances <= count <= max_instances:
            raise LauncherError(
                f"instance count {count} is outside the range {min_instances}-{max_instances} "
                "of min and max instances: start within it"
            )
    return NewEndpoint(instance_type, count, min_instances, max_instances)


@takes_plan_arguments(plan_component)
def deploy_component(
    *,
    wait: bool = True,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
    boto_session: Any = None,
    **launch: Any,
) -> ComponentDeployment:
    """An inference component (and its Model) on an endpoint built for components.

    `launch` takes `plan_component`'s keyword arguments: name=, endpoint=, one of
    training_job=, tuning_job= or model_data=, copies=, memory_mb=, cpus=,
    accelerators=, serving= and env= (as `deploy`), autoscaling by copies, and
    create_endpoint=True (with instance_type=, ...) to create the endpoint first. With
    `wait`, returns once the component is InService; autoscaling and a new endpoint need
    it (the component goes on once its endpoint is InService).
    """
    plan = plan_component(boto_session=boto_session, **launch)
    if not wait and (plan.scaling is not None or plan.new_endpoint is not None):
        why = "autoscaling is registered" if plan.scaling else "the component is created"
        raise LauncherError(
            f"{why} once the endpoint (and component) is InService, so deploy must wait: "
            "drop --no-wait"
        )
    session = boto_session or plan.target.boto_session()
    sagemaker = session.client("sagemaker")
    dry = is_dry_run(session)
    if plan.new_endpoint is None:
        variant = _variant_for_components(sagemaker, plan, dry)
        if wait and not dry:  # still Creating or Updating: the component waits for it
            wait_for_endpoint(
                plan.endpoint,
                boto_session=session,
                poll_seconds=poll_seconds,
                timeout_seconds=timeout_seconds,
            )
    else:
        variant = VARIANT
        if not dry and _exists(sagemaker, plan.endpoint):
            raise LauncherError(
                f"endpoint {plan.endpoint} exists already: drop --create-endpoint to deploy "
                "the component onto it"
            )
    training_job = plan.training_job
    if plan.tuning_job:
        from .tuning import best_training_job

        training_job = best_training_job(plan.tuning_job, session)
    model_data = plan.model_data or model_data_of(training_job, session)
    create_model(
        plan.name,
        model_data=model_data,
        image_uri=plan.target.image_uri,
        role=plan.target.role,
        environment=plan.environment,
        boto_session=session,
    )
    if plan.new_endpoint is not None:
        _create_endpoint(sagemaker, plan, session, poll_seconds, timeout_seconds)
    sagemaker.create_inference_component(
        InferenceComponentName=plan.name,
        EndpointName=plan.endpoint,
        VariantName=variant,
        Specification=plan.specification(),
        RuntimeConfig={"CopyCount": plan.copies},
    )
    say(f"inference component {plan.name} created on endpoint {plan.endpoint} ({variant})")
    status = "InService" if dry else "Creating"
    if wait and not dry:
        status = wait_for_component(
            plan.name,
            boto_session=session,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )
    if plan.scaling is not None:
        apply_component_scaling(plan.name, plan.scaling, session)
    return ComponentDeployment(
        plan.name, plan.endpoint, plan.name, status, plan.new_endpoint is not None
    )


def _variant_for_components(sagemaker: Any, plan: ComponentPlan, dry: bool) -> str:
    """The variant of an existing endpoint that takes components; LauncherError when the
    endpoint is missing or serves a model of its own."""
    from botocore.exceptions import ClientError

    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=plan.endpoint)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        raise LauncherError(
            f"endpoint {plan.endpoint} does not exist: check the name, or add "
            "--create-endpoint (create_endpoint=True) to create it for components"
        ) from None
    if endpoint.get("EndpointStatus") in ("Failed", "OutOfService", "Deleting"):
        raise LauncherError(
            f"endpoint {plan.endpoint} is {endpoint['EndpointStatus']}: it takes no component"
        )
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = config["ProductionVariants"]
    if dry:  # placeholders: nothing to check them against
        return variants[0]["VariantName"]
    served = [v["ModelName"] for v in variants if v.get("ModelName")]
    if served:
        raise LauncherError(
            f"endpoint {plan.endpoint} serves model {served[0]} itself, not inference "
            "components: deploy components onto an endpoint created for them "
            "(--create-endpoint with a new --endpoint name)"
        )
    if len(variants) != 1:
        names = ", ".join(v["VariantName"] for v in variants)
        raise LauncherError(
            f"endpoint {plan.endpoint} has several variants ({names}): the launcher places "
            "components on endpoints of one variant"
        )
    (variant,) = variants
    instance_type = variant.get("InstanceType") or ""
    if plan.accelerators and not is_accelerated(instance_type):
        raise LauncherError(
            f"accelerators {plan.accelerators}: endpoint {plan.endpoint} runs on "
            f"{instance_type or 'instances'} without any"
        )
    return variant["VariantName"]


def _exists(sagemaker: Any, endpoint: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        return False
    return True


def _create_endpoint(
    sagemaker: Any,
    plan: ComponentPlan,
    session: Any,
    poll_seconds: float,
    timeout_seconds: float | None,
) -> None:
    """An endpoint config with the execution role and a variant without a model, and the
    endpoint; returns once it is InService."""
    assert plan.new_endpoint is not None
    sagemaker.create_endpoint_config(
        EndpointConfigName=plan.endpoint,
        ExecutionRoleArn=plan.target.role,
        ProductionVariants=[plan.new_endpoint.variant()],
    )
    say(f"endpoint config {plan.endpoint} created (for inference components)")
    sagemaker.create_endpoint(EndpointName=plan.endpoint, EndpointConfigName=plan.endpoint)
    say(f"endpoint {plan.endpoint} created")
    if not is_dry_run(session):
        wait_for_endpoint(
            plan.endpoint,
            boto_session=session,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )


def wait_for_component(
    name: str,
    *,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> str:
    """Follow an inference component until InService (returned) or Failed (JobFailed)."""
    session = boto_session or resolve(region).boto_session()
    sagemaker = session.client("sagemaker")

    def poll() -> Status:
        d = sagemaker.describe_inference_component(InferenceComponentName=name)
        return Status(str(d.get("InferenceComponentStatus")), str(d.get("FailureReason") or ""))

    final = wait_for(
        f"inference component {name}",
        poll,
        ("InService", "Failed"),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
    if final.state != "InService":
        raise JobFailed(f"inference component {name} is {final.state}: {final.detail or '?'}")
    return final.state


def autoscale_component(
    name: str,
    *,
    min_copies: int | None = None,
    max_copies: int | None = None,
    target_invocations_per_copy: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
    region: str | None = None,
    boto_session: Any = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> list[str]:
    """Autoscale an existing component by its copies, replacing any autoscaling it had:
    waits until it is InService, then registers it as `deploy_component` would."""
    plan = plan_component_scaling(
        None,  # a running component: its copies move into the range by themselves
        min_copies=min_copies,
        max_copies=max_copies,
        target_invocations_per_copy=target_invocations_per_copy,
        scale_in_cooldown=scale_in_cooldown,
        scale_out_cooldown=scale_out_cooldown,
    )
    if plan is None:
        raise LauncherError("autoscale: give min and max copies and a target per copy")
    check_name(name, "component name")
    session = boto_session or resolve(region, boto_session=boto_session).boto_session()
    if not is_dry_run(session):
        wait_for_component(
            name, boto_session=session, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds
        )
    for line in remove_component_scaling(name, session):
        say(f"replaced {line}")
    return apply_component_scaling(name, plan, session)


def delete_component(
    name: str,
    *,
    keep_model: bool = False,
    region: str | None = None,
    boto_session: Any = None,
) -> list[str]:
    """Delete a component's autoscaling, the component and (unless `keep_model`) its Model;
    its endpoint stays. Returns what was deleted, e.g. ["scalable target ...",
    "inference component x", "model x"]."""
    from botocore.exceptions import ClientError

    check_name(name, "component name")
    session = boto_session or resolve(region, boto_session=boto_session).boto_session()
    sagemaker = session.client("sagemaker")
    try:
        described = sagemaker.describe_inference_component(InferenceComponentName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        raise LauncherError(f"inference component {name} does not exist") from None
    deleted = remove_component(name, described, keep_model, session)
    for line in deleted:
        say(f"deleted {line}")
    return deleted


def remove_component(name: str, described: dict, keep_model: bool, boto_session: Any) -> list[str]:
    """`delete_component`'s requests, for a component as DescribeInferenceComponent
    answered; returns what was deleted, saying nothing."""
    from botocore.exceptions import ClientError

    sagemaker = boto_session.client("sagemaker")
    model = (described.get("Specification") or {}).get("ModelName")
    # Autoscaling first: a scalable target left behind would outlive its component.
    deleted = remove_component_scaling(name, boto_session)
    sagemaker.delete_inference_component(InferenceComponentName=name)
    deleted.append(f"inference component {name}")
    if model and not keep_model:
        try:
            sagemaker.delete_model(ModelName=model)
            deleted.append(f"model {model}")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ValidationException":  # already gone
                raise
    return deleted


def components_on(endpoint: str, boto_session: Any) -> list[str]:
    """The names of the inference components on `endpoint`."""
    pages = (
        boto_session.client("sagemaker")
        .get_paginator("list_inference_components")
        .paginate(EndpointNameEquals=endpoint)
    )
    return [c["InferenceComponentName"] for page in pages for c in page["InferenceComponents"]]


def wait_until_deleted(
    names: list[str],
    boto_session: Any,
    *,
    poll_seconds: float = 10.0,
    timeout_seconds: float | None = 1800.0,
) -> None:
    """Wait until none of the components `names` exists any more (their endpoint can go)."""
    from botocore.exceptions import ClientError

    sagemaker = boto_session.client("sagemaker")
    left = list(names)

    def poll() -> Status:
        for name in list(left):
            try:
                sagemaker.describe_inference_component(InferenceComponentName=name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ValidationException":
                    raise
                left.remove(name)
        return Status("deleted") if not left else Status("deleting", f"{len(left)} left")

    wait_for(
        "inference components",
        poll,
        ("deleted",),
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
    )
