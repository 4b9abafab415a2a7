"""`delete`: an endpoint with its autoscaling, endpoint config and model
(`endpoints.delete`), or one model (`endpoints.delete_model`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import endpoints
from .options import add_command, add_target, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "delete",
        "delete an endpoint with its autoscaling, config and model; or a model",
        "Delete an endpoint and all it uses: first its autoscaling (the scaling policies, "
        "the wake-from-zero CloudWatch alarm of an async endpoint, the scalable target), "
        "then the endpoint, its endpoint config and the model(s) it served. Or delete one "
        "model (--model), e.g. the one `transform --training-job` leaves.",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--endpoint", metavar="NAME", help="endpoint name")
    g.add_argument("--model", metavar="NAME", help="a model only (an endpoint's stays up)")
    p.add_argument("--keep-model", action="store_true", help="leave the model(s) in place")


def run(args: argparse.Namespace) -> None:
    if args.model:
        endpoints.delete_model(args.model, **target(args))
        return
    endpoints.delete(args.endpoint, keep_model=args.keep_model, **target(args))
