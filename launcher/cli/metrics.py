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


def run(args: argparse.Namespace) -> None:
    print(metrics.as_json() if args.format == "json" else metrics.as_markdown())
