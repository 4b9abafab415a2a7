"""`add-model`: a model.tar.gz copied under a multi-model endpoint's prefix
(`multimodel.add_model`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import multimodel
from .options import add_command, add_dry_run, add_target, launch, target


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "add-model",
        "copy a model.tar.gz under a multi-model endpoint's prefix",
        "Copy a training job's model.tar.gz (or any model.tar.gz in S3) under the S3 prefix "
        "a multi-model endpoint serves, as NAME; invoke it with --target-model NAME. The "
        "copy stays inside S3. An existing NAME is refused unless --overwrite (an instance "
        "that has the old one loaded keeps serving it: a new version is best added under a "
        "new name).",
    )
    add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="a Completed training job")
    g.add_argument("--from", dest="model_data", metavar="S3_URI", help="a model.tar.gz")
    p.add_argument(
        "--to",
        required=True,
        metavar="S3_URI",
        help="the multi-model endpoint's prefix, ending in / (its --model-prefix)",
    )
    p.add_argument(
        "--name",
        metavar="KEY",
        help="the key under the prefix, ending in .tar.gz (default: <training job>.tar.gz, "
        "or the --from file's name)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an object of that name")
    add_dry_run(p)


def run(args: argparse.Namespace) -> None:
    launch(
        args,
        multimodel.add_model,
        **target(args),
        training_job=args.training_job,
        model_data=args.model_data,
        model_prefix=args.to,
        name=args.name,
        overwrite=args.overwrite,
    )
