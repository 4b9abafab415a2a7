"""`autoscale`: autoscaling for an endpoint already deployed (`endpoints.autoscale`) or an
inference component (`components.autoscale_component`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import components, endpoints
from ..settings import LauncherError
from .options import (
    add_autoscaling,
    add_command,
    add_dry_run,
    add_target,
    autoscaling,
    launch,
    target,
)


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "autoscale",
        "autoscale an endpoint (e.g. one deployed with --no-wait) or an inference component",
        "Wait until the endpoint is InService, then register its variant with Application "
        "Auto Scaling, replacing any autoscaling it had: a target-tracking policy on "
        "invocations per instance (realtime) or on the backlog per instance (async, which "
        "may scale to zero). With --component, the component's copies instead, on "
        "invocations per copy. Leaves the scalable target, its policies and, for scale to "
        "zero, a CloudWatch alarm: `delete` removes them with the endpoint or component.",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--endpoint", metavar="NAME", help="endpoint name")
    g.add_argument("--component", metavar="NAME", help="inference component name")
    add_autoscaling(p)
    g = p.add_argument_group("autoscaling an inference component (--component)")
    g.add_argument("--min-copies", type=int, metavar="N", help="at least this many copies")
    g.add_argument("--max-copies", type=int, metavar="N", help="at most this many copies")
    g.add_argument(
        "--target-invocations-per-copy",
        type=float,
        metavar="T",
        help="requests per copy per minute to hold",
    )
    p.add_argument(
        "--poll-seconds", type=float, default=30.0, metavar="SECONDS", help="poll interval"
    )
    p.add_argument("--wait-timeout", type=float, metavar="SECONDS", help="give up after this long")
    add_dry_run(p)


_PER_COPY = ("min_copies", "max_copies", "target_invocations_per_copy")
_PER_INSTANCE = (
    "min_instances",
    "max_instances",
    "target_invocations_per_instance",
    "target_backlog_per_instance",
)


def run(args: argparse.Namespace) -> None:
    wait = {"poll_seconds": args.poll_seconds, "timeout_seconds": args.wait_timeout}
    if args.component is not None:
        given = [k for k in _PER_INSTANCE if getattr(args, k) is not None]
        if given:
            raise LauncherError(
                f"--{given[0].replace('_', '-')}: a component scales by copies "
                "(--min-copies, --max-copies, --target-invocations-per-copy)"
            )
        launch(
            args,
            components.autoscale_component,
            args.component,
            **target(args),
            **{k: getattr(args, k) for k in _PER_COPY},
            scale_in_cooldown=args.scale_in_cooldown,
            scale_out_cooldown=args.scale_out_cooldown,
            **wait,
        )
        return
    given = [k for k in _PER_COPY if getattr(args, k) is not None]
    if given:
        raise LauncherError(
            f"--{given[0].replace('_', '-')}: copies are an inference component's (--component)"
        )
    launch(args, endpoints.autoscale, args.endpoint, **target(args), **autoscaling(args), **wait)
