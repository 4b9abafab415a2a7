"""`delete`: an endpoint, its endpoint config and its model (`endpoints.delete`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import endpoints
from .options import add_command, add_target, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "delete",
        "delete an endpoint, its endpoint config and its model",
        "Delete an endpoint, then its endpoint config and the model(s) it served.",
    )
    add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    p.add_argument("--keep-model", action="store_true", help="leave the model(s) in place")


def run(args: argparse.Namespace) -> None:
    endpoints.delete(args.endpoint, keep_model=args.keep_model, **target(args))
