"""Autoscaling an endpoint's variant with Application Auto Scaling: plan, apply, remove.

SageMaker scales an endpoint by changing its variant's instance count; Application Auto
Scaling owns that count once the variant (`endpoint/<name>/variant/<variant>`, dimension
`sagemaker:variant:DesiredInstanceCount`) is registered as a scalable target between a
minimum and a maximum. What moves it:

    realtime  a target-tracking policy on SageMakerVariantInvocationsPerInstance: the
              requests per instance per minute to hold (`target_invocations_per_instance`)
    async     a target-tracking policy on ApproximateBacklogSizePerInstance (AWS/SageMaker,
              dimension EndpointName): queued requests per instance to hold. With a
              minimum of 0 the endpoint can scale to zero, and since an endpoint with no
              instance reports no backlog per instance, a step policy adds one instance
              when the alarm on HasBacklogWithoutCapacity fires (a request waits and no
              instance is there to take it).

Serverless endpoints scale by themselves, up to their max concurrency. The variant must
exist to be registered, so this runs once the endpoint is InService.

An inference component scales by its copies instead (`inference-component/<name>`,
dimension `sagemaker:inference-component:DesiredCopyCount`), on
SageMakerInferenceComponentInvocationsPerCopy: requests per copy per minute. Its
endpoint's instances follow through the endpoint's managed instance scaling, which
adds an instance when a copy has nowhere to go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .settings import LauncherError
from .waiting import say

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
WAKE_METRIC = "HasBacklogWithoutCapacity"
METRIC_NAMESPACE = "AWS/SageMaker"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
COPIES_METRIC = "SageMakerInferenceComponentInvocationsPerCopy"
# Policy names are scoped to their scalable target.
INVOCATIONS_POLICY = "invocations-per-instance"
BACKLOG_POLICY = "backlog-per-instance"
WAKE_POLICY = "wake-from-zero"
COPIES_POLICY = "invocations-per-copy"
DEFAULT_COOLDOWN_SECONDS = 300  # Application Auto Scaling's own default for SageMaker


@dataclass(frozen=True)
class ScalingPlan:
    """What `apply` registers; checked, nothing sent."""

    min_instances: int  # of a component: its copies
    max_instances: int
    metric: str  # INVOCATIONS_METRIC (realtime), BACKLOG_METRIC (async) or COPIES_METRIC
    target: float  # per instance (or copy): invocations a minute, or requests queued
    scale_in_cooldown: int  # seconds
    scale_out_cooldown: int
    unit: str = "instances"  # what is counted: "copies" for an inference component

    @property
    def wakes_from_zero(self) -> bool:
        return self.min_instances == 0


def plan_scaling(
    mode: str,
    instance_count: int | None,
    *,
    min_instances: int | None = None,
    max_instances: int | None = None,
    target_invocations_per_instance: float | None = None,
    target_backlog_per_instance: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
) -> ScalingPlan | None:
    """The checked plan, or None when no autoscaling setting is given; LauncherError else."""
    given = {
        "min instances": min_instances,
        "max instances": max_instances,
        "target invocations per instance": target_invocations_per_instance,
        "target backlog per instance": target_backlog_per_instance,
        "scale-in cooldown": scale_in_cooldown,
        "scale-out cooldown": scale_out_cooldown,
    }
    if all(value is None for value in given.values()):
        return None
    if mode == "serverless":
        raise LauncherError(
            "autoscaling: a serverless endpoint scales by itself, up to its max concurrency; "
            "min/max instances apply to realtime and async endpoints"
        )
    if min_instances is None or max_instances is None:
        raise LauncherError(
            "autoscaling needs both min and max instances (--min-instances, --max-instances)"
        )
    _check_range(min_instances, max_instances, "instances")
    if min_instances == 0 and mode != "async":
        raise LauncherError(
            "min instances 0: only an async endpoint can scale to zero (a realtime one "
            "needs at least 1 instance to answer)"
        )
    if instance_count is not None and not max(min_instances, 1) <= instance_count <= max_instances:
        raise LauncherError(
            f"instance count {instance_count} is outside the autoscaling range "
            f"{min_instances}-{max_instances}: start within it"
        )
    if mode == "async":
        if target_invocations_per_instance is not None:
            raise LauncherError(
                "an async endpoint scales on its queue: give a target backlog per instance "
                "(--target-backlog-per-instance), not invocations"
            )
        metric, target, flag = BACKLOG_METRIC, target_backlog_per_instance, "backlog"
    else:
        if target_backlog_per_instance is not None:
            raise LauncherError(
                "a target backlog per instance applies to async endpoints; a realtime "
                "endpoint scales on --target-invocations-per-instance"
            )
        metric, target, flag = INVOCATIONS_METRIC, target_invocations_per_instance, "invocations"
    if target is None:
        raise LauncherError(
            f"autoscaling a {mode} endpoint needs --target-{flag}-per-instance (see the "
            "docs/launcher.md: Autoscaling, choosing T)"
        )
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
        raise LauncherError(f"target {flag} per instance {target!r}: expected a number > 0")
    cooldowns = _cooldowns(scale_in_cooldown, scale_out_cooldown)
    return ScalingPlan(min_instances, max_instances, metric, float(target), *cooldowns)


def plan_component_scaling(
    copies: int | None,
    *,
    min_copies: int | None = None,
    max_copies: int | None = None,
    target_invocations_per_copy: float | None = None,
    scale_in_cooldown: int | None = None,
    scale_out_cooldown: int | None = None,
) -> ScalingPlan | None:
    """An inference component's plan (its copies), or None when nothing is given."""
    given = (min_copies, max_copies, target_invocations_per_copy)
    if all(value is None for value in given):
        if scale_in_cooldown is not None or scale_out_cooldown is not None:
            raise LauncherError("cooldowns need autoscaling: give min and max copies and a target")
        return None
    if min_copies is None or max_copies is None:
        raise LauncherError(
            "autoscaling needs both min and max copies (--min-copies, --max-copies)"
        )
    _check_range(min_copies, max_copies, "copies")
    if min_copies == 0:
        raise LauncherError(
            "min copies 0: a component without copies answers nothing until one is placed; "
            "the launcher keeps at least 1"
        )
    if copies is not None and not min_copies <= copies <= max_copies:
        raise LauncherError(
            f"copies {copies} is outside the autoscaling range {min_copies}-{max_copies}: "
            "start within it"
        )
    target = target_invocations_per_copy
    if target is None:
        raise LauncherError(
            "autoscaling a component needs --target-invocations-per-copy (requests per copy "
            "per minute; see the docs/launcher.md: Autoscaling, choosing T)"
        )
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
        raise LauncherError(f"target invocations per copy {target!r}: expected a number > 0")
    cooldowns = _cooldowns(scale_in_cooldown, scale_out_cooldown)
    return ScalingPlan(min_copies, max_copies, COPIES_METRIC, float(target), *cooldowns, "copies")


def _check_range(low: Any, high: Any, unit: str) -> None:
    for what, value in ((f"min {unit}", low), (f"max {unit}", high)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LauncherError(f"{what} {value!r}: expected a whole number >= 0")
    if high < 1:
        raise LauncherError(f"max {unit} {high}: expected at least 1")
    if low > high:
        raise LauncherError(f"min {unit} {low} is above max {unit} {high}")


def _cooldowns(scale_in: int | None, scale_out: int | None) -> list[int]:
    cooldowns = []
    for what, value in (("scale-in", scale_in), ("scale-out", scale_out)):
        value = DEFAULT_COOLDOWN_SECONDS if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LauncherError(f"{what} cooldown {value!r}: expected whole seconds >= 0")
        cooldowns.append(value)
    return cooldowns


def resource_id(endpoint_name: str, variant: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def component_resource_id(component: str) -> str:
    return f"inference-component/{component}"


def _variant_target(endpoint_name: str, variant: str) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint_name, variant),
        "ScalableDimension": DIMENSION,
    }


def _component_target(component: str) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": component_resource_id(component),
        "ScalableDimension": COMPONENT_DIMENSION,
    }


def wake_alarm_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-{WAKE_METRIC}"


def apply_scaling(
    endpoint_name: str, variant: str, plan: ScalingPlan, boto_session: Any
) -> list[str]:
    """Register the variant and put its policies (and the wake alarm); returns what was
    put, e.g. ["scalable target endpoint/x/variant/AllTraffic", "scaling policy ..."]."""
    return _apply(_variant_target(endpoint_name, variant), plan, boto_session, endpoint_name)


def apply_component_scaling(component: str, plan: ScalingPlan, boto_session: Any) -> list[str]:
    """Register an inference component's copies and put its target-tracking policy."""
    return _apply(_component_target(component), plan, boto_session, None)


def _apply(
    target: dict[str, str], plan: ScalingPlan, boto_session: Any, endpoint_name: str | None
) -> list[str]:
    aas = boto_session.client("application-autoscaling")
    aas.register_scalable_target(
        **target, MinCapacity=plan.min_instances, MaxCapacity=plan.max_instances
    )
    done = [f"scalable target {target['ResourceId']}"]
    if plan.metric in (INVOCATIONS_METRIC, COPIES_METRIC):
        name = INVOCATIONS_POLICY if plan.metric == INVOCATIONS_METRIC else COPIES_POLICY
        metric = {"PredefinedMetricSpecification": {"PredefinedMetricType": plan.metric}}
    else:
        name = BACKLOG_POLICY
        metric = {
            "CustomizedMetricSpecification": {
                "MetricName": BACKLOG_METRIC,
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
                "Statistic": "Average",
            }
        }
    aas.put_scaling_policy(
        **target,
        PolicyName=name,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": plan.target,
            **metric,
            "ScaleInCooldown": plan.scale_in_cooldown,
            "ScaleOutCooldown": plan.scale_out_cooldown,
        },
    )
    done.append(f"scaling policy {name}")
    if plan.wakes_from_zero and endpoint_name is not None:
        done += _wake_from_zero(endpoint_name, target, plan, aas, boto_session.client("cloudwatch"))
    say(
        f"autoscaling {target['ResourceId']}: min_{plan.unit}={plan.min_instances} "
        f"max_{plan.unit}={plan.max_instances} metric={plan.metric} target={plan.target:g} "
        f"scale_in_cooldown_s={plan.scale_in_cooldown} "
        f"scale_out_cooldown_s={plan.scale_out_cooldown} "
        f"wakes_from_zero={str(plan.wakes_from_zero).lower()}"
    )
    return done


def _wake_from_zero(
    endpoint_name: str, target: dict, plan: ScalingPlan, aas: Any, cloudwatch: Any
) -> list[str]:
    """One instance more when a request waits with no instance to take it."""
    arn = aas.put_scaling_policy(
        **target,
        PolicyName=WAKE_POLICY,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "Cooldown": plan.scale_out_cooldown,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
        },
    )["PolicyARN"]
    alarm = wake_alarm_name(endpoint_name)
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        AlarmDescription=f"{endpoint_name} has queued requests and no instance: add one",
        Namespace=METRIC_NAMESPACE,
        MetricName=WAKE_METRIC,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
        AlarmActions=[arn],
    )
    return [f"scaling policy {WAKE_POLICY}", f"alarm {alarm}"]


def remove_scaling(endpoint_name: str, variants: list[str], boto_session: Any) -> list[str]:
    """Delete the variants' scaling policies (and the alarms that trigger the step ones),
    then deregister them; returns what was removed. Variants never registered are skipped.
    """
    aas = boto_session.client("application-autoscaling")
    removed: list[str] = []
    alarms: set[str] = set()
    for variant in variants:
        target = _variant_target(endpoint_name, variant)
        step_alarms = _remove_target(aas, target, removed)
        if step_alarms is not None:  # a step policy's alarm is ours to delete
            alarms.update(step_alarms)
            alarms.add(wake_alarm_name(endpoint_name))
    if alarms:
        cloudwatch = boto_session.client("cloudwatch")
        existing = cloudwatch.describe_alarms(AlarmNames=sorted(alarms))["MetricAlarms"]
        names = sorted(a["AlarmName"] for a in existing)
        if names:
            cloudwatch.delete_alarms(AlarmNames=names)
            removed += [f"alarm {name}" for name in names]
    return removed


def remove_component_scaling(component: str, boto_session: Any) -> list[str]:
    """Delete an inference component's scaling policies, then deregister it; returns what
    was removed (nothing when it was never registered)."""
    removed: list[str] = []
    _remove_target(
        boto_session.client("application-autoscaling"), _component_target(component), removed
    )
    return removed


def _remove_target(aas: Any, target: dict[str, str], removed: list[str]) -> set[str] | None:
    """Delete one scalable target's policies and deregister it, adding what went to
    `removed`; returns the alarms of its step policies, or None when it has none."""
    found = aas.describe_scalable_targets(
        ServiceNamespace=target["ServiceNamespace"],
        ResourceIds=[target["ResourceId"]],
        ScalableDimension=target["ScalableDimension"],
    )["ScalableTargets"]
    if not found:
        return None
    alarms: set[str] | None = None
    pages = aas.get_paginator("describe_scaling_policies").paginate(**target)
    for policy in (p for page in pages for p in page["ScalingPolicies"]):
        if policy["ResourceId"] != target["ResourceId"]:
            continue
        if policy["PolicyType"] == "StepScaling":
            alarms = (alarms or set()) | {a["AlarmName"] for a in policy.get("Alarms", [])}
        aas.delete_scaling_policy(PolicyName=policy["PolicyName"], **target)
        removed.append(f"scaling policy {policy['PolicyName']}")
    aas.deregister_scalable_target(**target)
    removed.append(f"scalable target {target['ResourceId']}")
    return alarms
