"""`deploy`: a model, endpoint config and endpoint (`endpoints.deploy`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import endpoints
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
        "create a model, endpoint config and endpoint",
        "Deploy a training job's model.tar.gz: real-time (default), asynchronous "
        "(--mode async --async-output-s3-uri) or serverless (CPU only; the image must be "
        "under 10 GB). Leaves the model, endpoint config and endpoint named --name, and "
        "their autoscaling: `delete --endpoint NAME` removes them all. If a step fails, "
        "what the earlier ones created is deleted again (not when a wait times out: the "
        "endpoint is still being created then).",
    )
    add_target(p, role_and_image=True)
    g = p.add_argument_group("model").add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="a Completed training job")
    g.add_argument("--tuning-job", metavar="NAME", help="a tuning job: its best trial's model")
    g.add_argument("--model-data", metavar="S3_URI", help="a model.tar.gz")
    g = p.add_argument_group("endpoint")
    g.add_argument(
        "--name", help="of the model, config and endpoint (default: text-classifier-<time>)"
    )
    g.add_argument("--mode", choices=endpoints.MODES, default="realtime", help="kind of endpoint")
    g.add_argument(
        "--instance-type", default=endpoints.DEFAULT_INSTANCE_TYPE, help="realtime and async"
    )
    g.add_argument("--instance-count", type=int, default=1, metavar="N", help="realtime and async")
    g.add_argument("--async-output-s3-uri", metavar="S3_URI", help="async: where responses go")
    g.add_argument("--async-failure-s3-uri", metavar="S3_URI", help="async: where errors go")
    g.add_argument(
        "--async-max-concurrent", type=int, metavar="N", help="async: requests per instance at once"
    )
    g.add_argument(
        "--serverless-memory-mb",
        type=int,
        default=endpoints.DEFAULT_SERVERLESS_MEMORY_MB,
        choices=endpoints.SERVERLESS_MEMORY_MB,
        metavar="MB",
        help="serverless: memory, 1024 to 6144 in 1024 steps (make bench-serverless measures "
        "what the model needs)",
    )
    g.add_argument(
        "--serverless-max-concurrency",
        type=int,
        default=5,
        metavar="N",
        help="serverless: concurrent invocations, 1 to 200",
    )
    add_serving(p)
    add_wait(p)
    add_dry_run(p)
    # issue 14: autoscaling and data capture
    add_autoscaling(p)
    _add_capture(p)


def run(args: argparse.Namespace) -> None:
    launch(
        args,
        endpoints.deploy,
        **target(args),
        **waiting(args),
        **serving(args),
        training_job=args.training_job,
        tuning_job=args.tuning_job,
        model_data=args.model_data,
        name=args.name,
        mode=args.mode,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        async_output_s3_uri=args.async_output_s3_uri,
        async_failure_s3_uri=args.async_failure_s3_uri,
        async_max_concurrent_invocations=args.async_max_concurrent,
        serverless_memory_mb=args.serverless_memory_mb,
        serverless_max_concurrency=args.serverless_max_concurrency,
        **autoscaling(args),  # issue 14
        **_capture(args),
    )


# --- issue 14: data capture ----------------------------------------------------------------
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
