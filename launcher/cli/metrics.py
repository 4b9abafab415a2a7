"""`metrics`: print the metric definitions, for jobs created outside the launcher."""

from __future__ import annotations

import argparse
from typing import Any

from .. import metrics
from .options import add_command


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "metrics",
        "print the metric definitions (for console-created jobs)",
        "The name=value metric regexes the training log matches, as the JSON that "
        "MetricDefinitions takes or as a Markdown table.",
    )
    p.add_argument("--format", choices=("json", "markdown"), default="json", help="output form")
    p.add_argument(
        "--model",
        metavar="NAME",
        help="the plug-in the job trains (the `model` hyperparameter); every shipped one's "
        "metrics when left out",
    )


def run(args: argparse.Namespace) -> None:
    if args.format == "json":
        print(metrics.as_json(args.model))
    else:
        print(metrics.as_markdown(args.model))
