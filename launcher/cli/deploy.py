"""`deploy`: a model, endpoint config and endpoint (`endpoints.deploy`), a multi-model
endpoint (--multi-model), or an inference component (`components.deploy_component`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import components, endpoints
from ..multimodel import DEFAULT_INSTANCE_TYPE as MULTI_MODEL_INSTANCE_TYPE
from ..settings import LauncherError
from .options import (
    add_autoscaling,
    add_command,
    add_dry_run,
    add_serving,
    add_target,
    add_wait,
    autoscaling,
    launch,
    serving,
    target,
    waiting,
)


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "deploy",
        "create a model, endpoint config and endpoint (or an inference component)",
        "Deploy a training job's model.tar.gz: real-time (default), asynchronous "
        "(--mode async --async-output-s3-uri) or serverless (CPU only; the image must be "
        "under 10 GB). --multi-model --model-prefix s3://.../models/ deploys a multi-model "
        "endpoint that serves every model.tar.gz under the prefix (CPU instances and the "
        "CPU image). --component NAME --endpoint E deploys the model as an inference "
        "component of endpoint E (--create-endpoint creates E first). Leaves the model, "
        "endpoint config and endpoint named --name, and their autoscaling: `delete "
        "--endpoint NAME` removes them all. If a step fails, what the earlier ones created "
        "is deleted again (not when a wait times out: the endpoint is still being created "
        "then).",
    )
    add_target(p, role_and_image=True)
    g = p.add_argument_group("model").add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="a Completed training job")
    g.add_argument("--tuning-job", metavar="NAME", help="a tuning job: its best trial's model")
    g.add_argument("--model-data", metavar="S3_URI", help="a model.tar.gz")
    g.add_argument(
        "--model-prefix",
        metavar="S3_URI",
        help="with --multi-model: the prefix (ending in /) of the model.tar.gz files it serves",
    )
    g = p.add_argument_group("endpoint")
    g.add_argument(
        "--name", help="of the model, config and endpoint (default: text-classifier-<time>)"
    )
    g.add_argument("--mode", choices=endpoints.MODES, default="realtime", help="kind of endpoint")
    g.add_argument(
        "--multi-model",
        action="store_true",
        help="a multi-model endpoint (realtime, CPU): invoke its models with --target-model",
    )
    g.add_argument(
        "--instance-type",
        help=f"realtime and async (default: {endpoints.DEFAULT_INSTANCE_TYPE}; "
        f"{MULTI_MODEL_INSTANCE_TYPE} with --multi-model)",
    )
    g.add_argument(
        "--instance-count", type=int, metavar="N", help="realtime and async (default: 1)"
    )
    g.add_argument("--async-output-s3-uri", metavar="S3_URI", help="async: where responses go")
    g.add_argument("--async-failure-s3-uri", metavar="S3_URI", help="async: where errors go")
    g.add_argument(
        "--async-max-concurrent", type=int, metavar="N", help="async: requests per instance at once"
    )
    g.add_argument(
        "--serverless-memory-mb",
        type=int,
        choices=endpoints.SERVERLESS_MEMORY_MB,
        metavar="MB",
        help="serverless: memory, 1024 to 6144 in 1024 steps (default: "
        f"{endpoints.DEFAULT_SERVERLESS_MEMORY_MB}; make bench-serverless measures what the "
        "model needs)",
    )
    g.add_argument(
        "--serverless-max-concurrency",
        type=int,
        metavar="N",
        help="serverless: concurrent invocations, 1 to 200 (default: 5)",
    )
    add_serving(p)
    add_wait(p)
    add_dry_run(p)
    # autoscaling, data capture, inference components
    add_autoscaling(p)
    _add_capture(p)
    _add_component(p)


def run(args: argparse.Namespace) -> None:
    if args.component is not None:
        _run_component(args)
        return
    _refuse(args, _COMPONENT_ONLY, "an inference component's: add --component NAME")
    optional = {
        key: value
        for key, value in (
            ("instance_type", args.instance_type),
            ("instance_count", args.instance_count),
            ("serverless_memory_mb", args.serverless_memory_mb),
            ("serverless_max_concurrency", args.serverless_max_concurrency),
        )
        if value is not None
    }
    launch(
        args,
        endpoints.deploy,
        **target(args),
        **waiting(args),
        **serving(args),
        **optional,
        training_job=args.training_job,
        tuning_job=args.tuning_job,
        model_data=args.model_data,
        name=args.name,
        mode=args.mode,
        async_output_s3_uri=args.async_output_s3_uri,
        async_failure_s3_uri=args.async_failure_s3_uri,
        async_max_concurrent_invocations=args.async_max_concurrent,
        **autoscaling(args),
        **_capture(args),
        multi_model=args.multi_model,
        model_prefix=args.model_prefix,
    )


# --- data capture -------------------------------------------------------------------------
def _add_capture(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data capture (realtime and async)")
    g.add_argument(
        "--capture-s3-uri", metavar="S3_URI", help="capture requests and answers under here"
    )
    g.add_argument(
        "--capture-percent", type=int, metavar="P", help="of invocations captured, 0-100 (100)"
    )
    g.add_argument(
        "--capture-content-types",
        metavar="TYPES",
        help="comma-separated CSV and JSON types kept as text (text/csv,application/json,"
        "application/jsonlines); others are kept base64-encoded",
    )


def _capture(args: argparse.Namespace) -> dict[str, Any]:
    types = args.capture_content_types
    return {
        "capture_s3_uri": args.capture_s3_uri,
        "capture_percent": args.capture_percent,
        "capture_content_types": [t for t in types.split(",") if t.strip()] if types else None,
    }


# --- inference components -----------------------------------------------------------------
def _add_component(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "inference component (the model as one component of an endpoint of many)"
    )
    g.add_argument("--component", metavar="NAME", help="the component (and its model) name")
    g.add_argument("--endpoint", metavar="NAME", help="the endpoint that hosts the component")
    g.add_argument(
        "--create-endpoint",
        action="store_true",
        help="create --endpoint for components first (--instance-type, --instance-count; "
        "--min-instances/--max-instances for its managed instance scaling)",
    )
    g.add_argument("--copies", type=int, metavar="N", help="copies of the model to run (1)")
    g.add_argument(
        "--memory-mb", type=int, metavar="MB", help="memory each copy reserves (required)"
    )
    g.add_argument("--cpus", type=float, metavar="CORES", help="CPU cores each copy reserves")
    g.add_argument(
        "--accelerators", type=int, metavar="N", help="GPUs (or other devices) each copy reserves"
    )
    g.add_argument("--min-copies", type=int, metavar="N", help="autoscaling: at least this many")
    g.add_argument("--max-copies", type=int, metavar="N", help="autoscaling: at most this many")
    g.add_argument(
        "--target-invocations-per-copy",
        type=float,
        metavar="T",
        help="autoscaling: requests per copy per minute to hold",
    )


# Flags of one kind of deploy that the other refuses, with how they are spelt.
_COMPONENT_ONLY = {
    "endpoint": "--endpoint",
    "create_endpoint": "--create-endpoint",
    "copies": "--copies",
    "memory_mb": "--memory-mb",
    "cpus": "--cpus",
    "accelerators": "--accelerators",
    "min_copies": "--min-copies",
    "max_copies": "--max-copies",
    "target_invocations_per_copy": "--target-invocations-per-copy",
}
_ENDPOINT_ONLY = {
    "name": "--name (the component's name is --component)",
    "multi_model": "--multi-model",
    "model_prefix": "--model-prefix",
    "async_output_s3_uri": "--async-output-s3-uri",
    "async_failure_s3_uri": "--async-failure-s3-uri",
    "async_max_concurrent": "--async-max-concurrent",
    "serverless_memory_mb": "--serverless-memory-mb",
    "serverless_max_concurrency": "--serverless-max-concurrency",
    "capture_s3_uri": "--capture-s3-uri",
    "capture_percent": "--capture-percent",
    "capture_content_types": "--capture-content-types",
    "target_invocations_per_instance": "--target-invocations-per-instance (a component "
    "scales on --target-invocations-per-copy)",
    "target_backlog_per_instance": "--target-backlog-per-instance",
}


def _refuse(args: argparse.Namespace, flags: dict[str, str], why: str) -> None:
    given = [flag for dest, flag in flags.items() if getattr(args, dest) not in (None, False)]
    if given:
        raise LauncherError(f"{given[0]}: {why}")


def _run_component(args: argparse.Namespace) -> None:
    _refuse(args, _ENDPOINT_ONLY, "not for an inference component")
    if args.mode != "realtime":
        raise LauncherError(
            f"--mode {args.mode}: inference components are invoked in real time "
            "(InvokeEndpointAsync takes no component)"
        )
    if not args.endpoint:
        raise LauncherError("--component needs --endpoint NAME: the endpoint that hosts it")
    given = {
        key: getattr(args, key)
        for key in ("copies", "scale_in_cooldown", "scale_out_cooldown")
        if getattr(args, key) is not None
    }
    launch(
        args,
        components.deploy_component,
        **target(args),
        **waiting(args),
        **serving(args),
        **given,
        name=args.component,
        endpoint=args.endpoint,
        training_job=args.training_job,
        tuning_job=args.tuning_job,
        model_data=args.model_data,
        memory_mb=args.memory_mb,
        cpus=args.cpus,
        accelerators=args.accelerators,
        min_copies=args.min_copies,
        max_copies=args.max_copies,
        target_invocations_per_copy=args.target_invocations_per_copy,
        create_endpoint=args.create_endpoint,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        min_instances=args.min_instances,
        max_instances=args.max_instances,
    )
