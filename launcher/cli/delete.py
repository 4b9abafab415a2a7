"""`delete`: an endpoint with its autoscaling, endpoint config and model
(`endpoints.delete`), an inference component and its model
(`components.delete_component`), or one model (`endpoints.delete_model`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import components, endpoints
from .options import add_command, add_dry_run, add_target, launch, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "delete",
        "delete an endpoint (or an inference component) with its autoscaling and model; or a model",
        "Delete an endpoint and all it uses: first its autoscaling (the scaling policies, "
        "the wake-from-zero CloudWatch alarm of an async endpoint, the scalable target), "
        "then the endpoint, its endpoint config and the model(s) it served; an endpoint of "
        "inference components loses its components first. A multi-model endpoint's "
        "model.tar.gz files stay in S3. --component NAME deletes one inference component, "
        "its autoscaling and its model; the endpoint stays. --model NAME deletes one model, "
        "e.g. the one `transform --training-job` leaves.",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--endpoint", metavar="NAME", help="endpoint name")
    g.add_argument("--component", metavar="NAME", help="inference component name")
    g.add_argument("--model", metavar="NAME", help="a model only (an endpoint's stays up)")
    p.add_argument("--keep-model", action="store_true", help="leave the model(s) in place")
    add_dry_run(p)


def run(args: argparse.Namespace) -> None:
    if args.model is not None:
        launch(args, endpoints.delete_model, args.model, **target(args))
    elif args.component is not None:
        launch(
            args,
            components.delete_component,
            args.component,
            keep_model=args.keep_model,
            **target(args),
        )
    else:
        launch(args, endpoints.delete, args.endpoint, keep_model=args.keep_model, **target(args))
