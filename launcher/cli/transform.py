"""`transform`: a batch transform job over an S3 prefix (`batch.transform`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import batch
from .options import (
    add_command,
    add_dry_run,
    add_serving,
    add_target,
    add_wait,
    launch,
    serving,
    target,
    waiting,
)


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "transform",
        "run a batch transform job over an S3 prefix",
        "Batch transform over an S3 prefix. JSON Lines and CSV: SplitType Line, MultiRecord "
        "batches, AssembleWith Line. Any other type the plug-in reads (image/png, "
        "application/x-npy, ...): one record per S3 object, SplitType None, SingleRecord, "
        "AssembleWith None. The limits are those the container reports at "
        "/execution-parameters. Leaves the job and its answers under --output; with "
        "--training-job or --model-data also a model named as the job (--name): pass it "
        "as --model-name next time, or remove it with `delete --model NAME` (if the job "
        "fails, it is deleted again).",
    )
    add_target(p, role_and_image=True)
    g = p.add_argument_group("model (role and image are needed to create one)")
    g = g.add_mutually_exclusive_group(required=True)
    g.add_argument("--model-name", help="an existing SageMaker model (e.g. from deploy)")
    g.add_argument("--training-job", metavar="NAME", help="create a model from this job")
    g.add_argument("--model-data", metavar="S3_URI", help="create a model from this model.tar.gz")
    g = p.add_argument_group("data")
    g.add_argument("--input", required=True, metavar="S3_URI", help="S3 prefix of input files")
    g.add_argument("--output", required=True, metavar="S3_URI", help="S3 prefix for results")
    g.add_argument(
        "--content-type",
        default="application/jsonlines",
        metavar="TYPE",
        help="of the input: any type the plug-in reads; JSON Lines and CSV are split at "
        "newlines, any other is one record per S3 object",
    )
    g.add_argument(
        "--accept",
        metavar="TYPE",
        help="of the output (default: the input's for JSON Lines and CSV, else the "
        "plug-in's first answer type, application/json when not known)",
    )
    g.add_argument(
        "--model",
        dest="plugin",
        metavar="PLUGIN",
        help="the plug-in the model was trained with (its `model` hyperparameter): the "
        "types are checked against those it declares (a --training-job's own is checked "
        "too)",
    )
    g = p.add_argument_group("job")
    g.add_argument("--name", help="transform job name (default: text-classifier-batch-<time>)")
    g.add_argument("--instance-type", default=batch.DEFAULT_INSTANCE_TYPE, help="ML instance type")
    g.add_argument("--instance-count", type=int, default=1, metavar="N", help="instances")
    g.add_argument(
        "--max-concurrent-transforms",
        type=int,
        metavar="N",
        help="requests per instance at once (default: the server's workers: 1 per GPU; on CPU"
        " 1 per vCPU, at most 4)",
    )
    g.add_argument(
        "--max-payload-mb",
        type=int,
        metavar="MB",
        help="per request, 1 to 100 (default: 6); with one record per S3 object, at least "
        "the largest object",
    )
    add_serving(p, skip=("max_payload_mb",))
    add_wait(p)
    add_dry_run(p)
    _add_joins(p)


def run(args: argparse.Namespace) -> None:
    launch(
        args,
        batch.transform,
        **target(args),
        **waiting(args),
        **serving(args),
        model_name=args.model_name,
        training_job=args.training_job,
        model_data=args.model_data,
        input_s3_uri=args.input,
        output_s3_uri=args.output,
        content_type=args.content_type,
        accept=args.accept,
        model=args.plugin,
        name=args.name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        max_concurrent_transforms=args.max_concurrent_transforms,
        max_payload_mb=args.max_payload_mb,
        input_filter=args.input_filter,
        join_source=args.join_source,
        output_filter=args.output_filter,
    )


def _add_joins(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "keeping input next to each answer (SageMaker's DataProcessing; docs/launcher.md: Batch transform joins)"
    )
    g.add_argument(
        "--input-filter",
        metavar="JSONPATH",
        help="what of each record the model sees, e.g. '$[1:]' (CSV: all columns but an id)",
    )
    g.add_argument(
        "--join-source",
        type=str.capitalize,
        choices=batch.JOIN_SOURCES,
        help="Input: append each answer to its whole input record (None: the answer alone)",
    )
    g.add_argument(
        "--output-filter",
        metavar="JSONPATH",
        help="what of the joined record is written, e.g. '$[0,-1]' (CSV: the id, the last column)",
    )
