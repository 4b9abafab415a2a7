"""`wait`: follow a training job, tuning job, endpoint or transform job until it ends."""

from __future__ import annotations

import argparse
from typing import Any

from .. import batch, endpoints, jobs, tuning
from .options import add_command, add_target, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "wait",
        "follow a training job, tuning job, endpoint or transform job",
        "Print status changes (and a training job's log) until it ends; exit 0 on success.",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="until Completed, Failed or Stopped")
    g.add_argument(
        "--tuning-job",
        metavar="NAME",
        help="until it ends; then its trials and the best (and, if the best was Stopped "
        "early and left no model, the best completed one, which deploy takes)",
    )
    g.add_argument("--endpoint", metavar="NAME", help="until InService or Failed")
    g.add_argument("--transform-job", metavar="NAME", help="until Completed, Failed or Stopped")
    p.add_argument(
        "--poll-seconds", type=float, default=30.0, metavar="SECONDS", help="poll interval"
    )
    p.add_argument("--wait-timeout", type=float, metavar="SECONDS", help="give up after this long")
    p.add_argument(
        "--no-logs", dest="logs", action="store_false", help="training: do not stream its log"
    )


def run(args: argparse.Namespace) -> None:
    follow = {
        **target(args),
        "poll_seconds": args.poll_seconds,
        "timeout_seconds": args.wait_timeout,
    }
    if args.training_job:
        jobs.wait_for_training(args.training_job, logs=args.logs, **follow)
    elif args.tuning_job:
        tuning.wait_for_tuning(args.tuning_job, **follow)
    elif args.endpoint:
        endpoints.wait_for_endpoint(args.endpoint, **follow)
    else:
        batch.wait_for_transform(args.transform_job, **follow)
