"""`describe`: a tuning job's trials and its best one (`tuning.describe_tuning`), or what
an endpoint hosts (`endpoints.describe_endpoint`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import endpoints, tuning
from ..waiting import say
from .options import add_command, add_target, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "describe",
        "show a tuning job's trials, or what an endpoint hosts",
        "Print a hyperparameter tuning job's status, then one line per trial (name, "
        "status, objective value, tuned hyperparameters) and the best trial (a best trial "
        "that was Stopped by early stopping left no model: a last line says so and names "
        "the best completed trial, the one `deploy --tuning-job` takes); or an endpoint's "
        "status, mode and what it hosts: one model, the models under a multi-model "
        "endpoint's prefix, or its inference components.",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--tuning-job", metavar="NAME", help="the tuning job")
    g.add_argument("--endpoint", metavar="NAME", help="the endpoint")


def run(args: argparse.Namespace) -> None:
    if args.endpoint is not None:
        for line in endpoints.describe_endpoint(args.endpoint, **target(args)).lines():
            say(line)
        return
    info = tuning.describe_tuning(args.tuning_job, **target(args))
    counts = ", ".join(f"{k} {v}" for k, v in info.counters.items() if v)
    say(
        f"tuning job {info.name}: {info.status} ({info.direction} {info.objective}; "
        f"trials: {counts or 'none yet'})"
    )
    for line in tuning.report(info):
        say(line)
