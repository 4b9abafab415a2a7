"""`autoscale`: autoscaling for an endpoint already deployed (`endpoints.autoscale`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import endpoints
from .options import add_autoscaling, add_command, add_target, autoscaling, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "autoscale",
        "autoscale an endpoint (e.g. one deployed with --no-wait)",
        "Wait until the endpoint is InService, then register its variant with Application "
        "Auto Scaling, replacing any autoscaling it had: a target-tracking policy on "
        "invocations per instance (realtime) or on the backlog per instance (async, which "
        "may scale to zero). Leaves the scalable target, its policies and, for scale to "
        "zero, a CloudWatch alarm: `delete` removes them with the endpoint.",
    )
    add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    add_autoscaling(p)
    p.add_argument(
        "--poll-seconds", type=float, default=30.0, metavar="SECONDS", help="poll interval"
    )
    p.add_argument("--wait-timeout", type=float, metavar="SECONDS", help="give up after this long")


def run(args: argparse.Namespace) -> None:
    endpoints.autoscale(
        args.endpoint,
        **target(args),
        **autoscaling(args),
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.wait_timeout,
    )
