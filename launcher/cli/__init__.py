"""`python -m launcher` (or `byoc-launch`): train, tune, deploy, invoke, transform, delete, ...

Each subcommand is a thin layer over the Python function of the same name, in the module
of this package named after it (its flags, then the call); run one with `--help` for its
options. Exit status: 0 done, 1 AWS or the job or endpoint failed, or the wait timed out
(the resource keeps running), 2 the launch was refused before any request; either way one
line on stderr says why (`errors.py`), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import (
    add_model,
    autoscale,
    delete,
    deploy,
    describe,
    invoke,
    metrics,
    train,
    transform,
    tune,
    wait,
)
from .errors import debugging, explain

# What the help calls the program, unless it runs under another name (`byoc-launch`).
PROG = "python -m launcher"

EPILOG = """\
region, role and image URI come from the flags or from AWS_REGION / AWS_DEFAULT_REGION,
SAGEMAKER_ROLE_ARN and IMAGE_URI. Examples:

  python -m launcher train --train s3://bucket/data/train/ --validation s3://bucket/data/val/ \\
      --hp epochs=5 --hp learning_rate=5e-5 --spot --checkpoint-s3-uri s3://bucket/ckpt/run-1/
  python -m launcher tune --train s3://bucket/data/train/ --validation s3://bucket/data/val/ \\
      --range learning_rate=1e-5:1e-3:log --range pooling=mean,cls --objective val_f1
  python -m launcher deploy --training-job text-classifier-20250101120000 --max-batch-size 64
  python -m launcher deploy --training-job text-classifier-20250101120000 \\
      --min-instances 1 --max-instances 4 --target-invocations-per-instance 3000
  python -m launcher deploy --tuning-job text-classifier-250101-120000
  python -m launcher invoke --endpoint text-classifier-20250101-130000 --data '{"text": "hi"}'
  python -m launcher invoke --endpoint image-classifier-20250101-130000 --file cat.png
  python -m launcher transform --model-name text-classifier-20250101-130000 \\
      --input s3://bucket/batch/in/ --output s3://bucket/batch/out/ --content-type text/csv
  python -m launcher transform --model-name image-classifier-20250101-130000 \\
      --input s3://bucket/images/ --output s3://bucket/labels/ --content-type image/png
  python -m launcher delete --endpoint text-classifier-20250101-130000
  python -m launcher delete --model text-classifier-batch-20250101-140000

Many models on one endpoint: a multi-model endpoint (CPU image, CPU instance types) ...
  python -m launcher deploy --multi-model --model-prefix s3://bucket/models/ --name per-customer
  python -m launcher add-model --training-job text-classifier-20250101120000 \\
      --to s3://bucket/models/ --name customer-42.tar.gz
  python -m launcher invoke --endpoint per-customer --target-model customer-42.tar.gz \\
      --data '{"text": "hi"}'
... or inference components, each with its own copies and reservations:
  python -m launcher deploy --training-job text-classifier-20250101120000 \\
      --component support-en --endpoint shared --create-endpoint --memory-mb 2048 --cpus 1
  python -m launcher invoke --endpoint shared --component support-en --data '{"text": "hi"}'
  python -m launcher delete --component support-en

Add --dry-run to train, tune, deploy, transform, invoke, add-model, autoscale or delete to
check everything and print the requests as JSON without sending any (no credentials,
region, role or image needed). Without an AWS account: `make launch-demo` runs these
against a local moto server. A deploy or transform that fails deletes what it had
created. Errors are one line (LAUNCHER_DEBUG=1 for a traceback).
"""

# In the order `--help` lists them.
COMMANDS = {
    "train": train,
    "tune": tune,
    "deploy": deploy,
    "invoke": invoke,
    "add-model": add_model,
    "transform": transform,
    "delete": delete,
    "autoscale": autoscale,
    "wait": wait,
    "describe": describe,
    "metrics": metrics,
}


# Commands whose help lists hyperparameters: they list the plug-ins `--hp model=NAME` names.
_LIST_PLUGINS = (train, tune)


def build_parser(plugins: Sequence[str] = (), prog: str = PROG) -> argparse.ArgumentParser:
    """The parser; `plugins` are listed in train's and tune's help beside the shipped ones.
    `prog` names the program in the usage lines and the examples."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Launch the text-classifier image on Amazon SageMaker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        if command in _LIST_PLUGINS:
            command.add_parser(sub, plugins)
        else:
            command.add_parser(sub)
    if prog != PROG:  # the examples in every help text, as the user runs the program
        for p in (parser, *sub.choices.values()):
            p.epilog = p.epilog and p.epilog.replace(PROG, prog)
            p.description = p.description and p.description.replace(PROG, prog)
    return parser


def run(args: argparse.Namespace) -> None:
    COMMANDS[args.command].run(args)


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Help lists the hyperparameters of a plug-in named on the command line (one on
    # PYTHONPATH too); only for help, so a launch imports nothing it would not anyway.
    asks_help = any(a in ("-h", "--help") for a in argv)
    parser = build_parser(train.named_plugins(argv) if asks_help else (), prog)
    args = parser.parse_args(argv)
    try:
        run(args)
    except BrokenPipeError:  # `| head` closed stdout early: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: what was created so far stays (`delete` removes it)", file=sys.stderr)
        return 130
    except Exception as exc:
        if debugging():
            raise
        code, message = explain(exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    return 0


def byoc_launch() -> None:
    """The `byoc-launch` console script: `main`, naming the program as it was invoked."""
    sys.exit(main(prog=Path(sys.argv[0]).name or "byoc-launch"))
