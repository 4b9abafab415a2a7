"""`python -m launcher` (or `byoc-launch`): train, tune, deploy, invoke, transform, delete, ...

Each subcommand is a thin layer over the Python function of the same name, in the module
of this package named after it (its flags, then the call); run one with `--help` for its
options. Exit status: 0 done, 1 the job or endpoint failed or the wait timed out (the
resource keeps running), 2 the launch was refused before any request.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..settings import LauncherError
from ..waiting import JobFailed, WaitTimeout
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
region, role or image needed).
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


def build_parser(plugins: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; `plugins` are listed in train's and tune's help beside the shipped ones."""
    parser = argparse.ArgumentParser(
        prog="python -m launcher",
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
    return parser


def run(args: argparse.Namespace) -> None:
    COMMANDS[args.command].run(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Help lists the hyperparameters of a plug-in named on the command line (one on
    # PYTHONPATH too); only for help, so a launch imports nothing it would not anyway.
    asks_help = any(a in ("-h", "--help") for a in argv)
    args = build_parser(train.named_plugins(argv) if asks_help else ()).parse_args(argv)
    try:
        run(args)
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (JobFailed, WaitTimeout) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `| head` closed stdout early: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        if _is_role_error(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, ParamValidationError):  # botocore's own check, before sending
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        if isinstance(exc, (ClientError, BotoCoreError)):
            print(f"error: AWS said: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


def _is_role_error(exc: Exception) -> bool:
    """The SDK's RoleValidationError: the role cannot be used, checked before the job."""
    resolver = sys.modules.get("sagemaker.core.helper.iam_role_resolver")
    error = getattr(resolver, "RoleValidationError", None)
    return error is not None and isinstance(exc, error)
