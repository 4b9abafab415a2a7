"""`describe`: a tuning job's trials and its best one (`tuning.describe_tuning`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import tuning
from ..waiting import say
from .options import add_command, add_target, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "describe",
        "show a tuning job's trials and the best one",
        "Print a hyperparameter tuning job's status, then one line per trial (name, "
        "status, objective value, tuned hyperparameters) and the best trial. A best trial "
        "that was Stopped (early stopping) left no model: a last line says so and names "
        "the best completed trial, the one `deploy --tuning-job` takes.",
    )
    add_target(p, role_and_image=False)
    p.add_argument("--tuning-job", required=True, metavar="NAME", help="the tuning job")


def run(args: argparse.Namespace) -> None:
    info = tuning.describe_tuning(args.tuning_job, **target(args))
    counts = ", ".join(f"{k} {v}" for k, v in info.counters.items() if v)
    say(
        f"tuning job {info.name}: {info.status} ({info.direction} {info.objective}; "
        f"trials: {counts or 'none yet'})"
    )
    for line in tuning.report(info):
        say(line)
