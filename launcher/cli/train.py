"""`train`: start a training job on the image (`jobs.train`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sagemaker_platform import registry
from sagemaker_platform.config import TrainSettings, describe
from sagemaker_platform.errors import UserError

from .. import channels, jobs
from ..params import parse_pairs
from .options import add_command, add_dry_run, add_target, add_wait, launch, target, waiting


def hyperparameter_table(named: Sequence[str] = (), command: str = "train") -> str:
    """The platform's hyperparameters, then each shipped plug-in's and each plug-in in
    `named` (from `--hp model=NAME` on the command line, e.g. one on PYTHONPATH)."""

    def rows(cls) -> str:
        return "\n".join(
            f"  {name:<26} {default:<10} {text}" for name, default, text in describe(cls)
        )

    parts = [
        "hyperparameters (--hp NAME=VALUE; the image's default applies when left out):\n"
        + rows(TrainSettings)
    ]
    shipped = registry.available()
    for name in [*shipped, *(n for n in dict.fromkeys(named) if n not in shipped)]:
        try:
            plugin = registry.load(name)
        except UserError as exc:  # a name given on this command line: say why, go on
            parts.append(f"model={name}: cannot be listed: {exc}")
            continue
        parts.append(f"model={name}:\n" + rows(plugin.Hyperparameters))
    parts.append(
        "A plug-in outside model/plugins/ (a package on PYTHONPATH) is listed when named:\n"
        f"  python -m launcher {command} --hp model=my_package --help"
    )
    return "\n\n".join(parts)


def named_plugins(argv: Sequence[str]) -> list[str]:
    """The plug-ins `--hp model=NAME` names in `argv` (`--hp=model=NAME` too)."""
    names = []
    for i, arg in enumerate(argv):
        value = arg[len("--hp=") :] if arg.startswith("--hp=") else None
        if arg == "--hp" and i + 1 < len(argv):
            value = argv[i + 1]
        key, sep, name = (value or "").partition("=")
        if sep and key.strip() == "model" and name:
            names.append(name)
    return names


def add_parser(sub: Any, plugins: Sequence[str] = ()) -> None:
    p = add_command(
        sub,
        "train",
        "start a training job on the image",
        "Start a SageMaker training job: S3 channels in, model.tar.gz out. Hyperparameters "
        "are checked with the container's own parser before anything is sent. Leaves the "
        "job (a record; billing ends with it), model.tar.gz under --output-s3-uri, "
        "TensorBoard files and, with --checkpoint-s3-uri, the checkpoints; a warm pool "
        "(--keep-alive-seconds) is billed until it expires.",
        hyperparameter_table(plugins),
    )
    add_training_arguments(p)
    add_wait(p, logs=True)


def add_training_arguments(p: argparse.ArgumentParser, *, tuning: bool = False) -> None:
    """Where, data and job flags: every setting of a training job. `tune` takes them too
    (`tuning`), but for those a tuning job's trials cannot have: TensorBoard, a warm pool."""
    add_target(p, role_and_image=True)
    g = p.add_argument_group("data")
    g.add_argument("--train", required=True, metavar="S3_URI", help="the train channel (S3 prefix)")
    g.add_argument("--validation", metavar="S3_URI", help="the validation channel")
    g.add_argument(
        "--pretrained",
        metavar="S3_URI",
        help="the pretrained channel: a backbone folder, or an earlier job's model.tar.gz",
    )
    g.add_argument(
        "--output-s3-uri",
        metavar="S3_URI",
        help="where model.tar.gz goes (default: s3://<train bucket>/<base job name>)",
    )
    g.add_argument(
        "--distribution",
        action="append",
        metavar="[CHANNEL=]sharded|replicated",
        help="sharded: each host gets part of the channel's S3 objects (ShardedByS3Key); "
        "a bare value applies to train (repeatable; default: replicated)",
    )
    g.add_argument(
        "--input-mode",
        default="File",
        metavar="File|FastFile",
        help="File downloads the channels before training; FastFile streams them from S3 "
        "(Pipe is refused: the image reads files)",
    )
    g = p.add_argument_group("job")
    g.add_argument(
        "--hp",
        action="append",
        metavar="NAME=VALUE",
        help="a hyperparameter (repeatable); --hp model=NAME picks the plug-in, and with "
        "--help lists its hyperparameters below",
    )
    g.add_argument(
        "--base-job-name",
        help="the job is named <this>-<timestamp> (default: the plug-in's name, --hp model=NAME, "
        f"or {jobs.DEFAULT_BASE_JOB_NAME})",
    )
    g.add_argument("--instance-type", default=jobs.DEFAULT_INSTANCE_TYPE, help="ML instance type")
    g.add_argument("--instance-count", type=int, default=1, metavar="N", help="instances")
    g.add_argument(
        "--volume-size-gb",
        type=int,
        default=jobs.DEFAULT_VOLUME_GB,
        metavar="GB",
        help="EBS volume",
    )
    g.add_argument(
        "--max-run",
        type=int,
        default=jobs.DEFAULT_MAX_RUN_SECONDS,
        metavar="SECONDS",
        help="SageMaker stops the job after this long",
    )
    g.add_argument(
        "--spot", action="store_true", help="managed spot training (needs --checkpoint-s3-uri)"
    )
    g.add_argument(
        "--max-wait",
        type=int,
        metavar="SECONDS",
        help="spot: running plus waiting for capacity (default: 2 x --max-run)",
    )
    g.add_argument(
        "--checkpoint-s3-uri",
        metavar="S3_URI",
        help="synced with the container's checkpoint folder; reuse it to resume",
    )
    if not tuning:
        g.add_argument(
            "--tensorboard-s3-uri",
            metavar="S3_URI",
            help="TensorBoard event files (default: <output>/tensorboard)",
        )
        g.add_argument(
            "--keep-alive-seconds",
            type=int,
            metavar="SECONDS",
            help=f"keep the instances in a warm pool this long after the job (0 to "
            f"{jobs.MAX_KEEP_ALIVE_SECONDS}): a next job of the same instance type and count "
            "starts on them in seconds",
        )
    add_dry_run(p)
    g = p.add_argument_group("experiment tracking")
    g.add_argument(
        "--mlflow-tracking-uri",
        metavar="URI",
        help="MLflow server URL or SageMaker managed MLflow ARN: training logs its "
        "hyperparameters, per-epoch metrics and final report there",
    )
    g.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        help="the MLflow experiment (default: the plug-in's name)",
    )


def training_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_training_arguments` flags as the keyword arguments of `plan_training`."""
    return {
        **target(args),
        "train": args.train,
        "validation": args.validation,
        "pretrained": args.pretrained,
        "output_s3_uri": args.output_s3_uri,
        "hyperparameters": parse_pairs(args.hp, "--hp"),
        "base_job_name": args.base_job_name,
        "instance_type": args.instance_type,
        "instance_count": args.instance_count,
        "volume_size_gb": args.volume_size_gb,
        "max_run_seconds": args.max_run,
        "spot": args.spot,
        "max_wait_seconds": args.max_wait,
        "checkpoint_s3_uri": args.checkpoint_s3_uri,
        "tensorboard_s3_uri": getattr(args, "tensorboard_s3_uri", None),  # train only
        "keep_alive_seconds": getattr(args, "keep_alive_seconds", None),
        "mlflow_tracking_uri": args.mlflow_tracking_uri,
        "mlflow_experiment": args.mlflow_experiment,
        "distribution": channels.parse_distribution(args.distribution),
        "input_mode": args.input_mode,
    }


def run(args: argparse.Namespace) -> None:
    launch(args, jobs.train, **waiting(args), logs=args.logs, **training_arguments(args))
