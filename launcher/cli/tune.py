"""`tune`: a hyperparameter tuning job on the image (`tuning.tune`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .. import tuning
from ..ranges import parse_range_flags
from .options import add_command, add_wait, launch, waiting
from .train import add_training_arguments, hyperparameter_table, training_arguments

EPILOG = """\
ranges (--range NAME=SPEC, repeatable; NAME is any hyperparameter below but model):
  learning_rate=1e-5:1e-3:log    a float or integer between MIN and MAX; the scale is
                                 auto (default), linear, log or reverse-log (floats in [0, 1))
  batch_size=16,32               listed values, of any type (Grid takes only these)
  pooling=mean,cls

objectives: the name=value metrics the job logs (python -m launcher metrics --model NAME),
but epoch; the direction defaults to Minimize for *loss, *rmse, *mae, else Maximize.

"""


def add_parser(sub: Any, plugins: Sequence[str] = ()) -> None:
    p = add_command(
        sub,
        "tune",
        "start a hyperparameter tuning job on the image",
        "Start a SageMaker hyperparameter tuning job: every trial is a training job with "
        "the settings of `train` (--hp fixes a hyperparameter), and --range names what to "
        "search. Ranges and the objective are checked against the plug-in before anything "
        "is sent. Leaves the tuning job and each trial's training job, its model.tar.gz "
        "under --output-s3-uri. Not taken here, as a tuning job's trials cannot have "
        "them: --keep-alive-seconds, --tensorboard-s3-uri.",
        EPILOG + hyperparameter_table(plugins, "tune"),
    )
    add_training_arguments(p, tuning=True)
    g = p.add_argument_group("tuning")
    g.add_argument(
        "--range",
        dest="ranges",
        action="append",
        required=True,
        metavar="NAME=SPEC",
        help="a hyperparameter to search: MIN:MAX[:SCALE] or A,B,... (repeatable)",
    )
    g.add_argument("--objective", required=True, metavar="METRIC", help="the metric to optimise")
    g.add_argument(
        "--direction",
        choices=("Maximize", "Minimize"),
        help="(default: from the metric: Minimize for losses and errors)",
    )
    g.add_argument("--strategy", choices=tuning.STRATEGIES, default="Bayesian", help="search")
    g.add_argument(
        "--max-jobs",
        type=int,
        metavar="N",
        help=f"trials in all (default: {tuning.DEFAULT_MAX_JOBS}; Grid: one per combination)",
    )
    g.add_argument("--max-parallel-jobs", type=int, default=2, metavar="N", help="at a time")
    g.add_argument(
        "--early-stopping",
        choices=tuning.EARLY_STOPPING,
        default="Off",
        help="Auto: SageMaker stops trials that fall behind (Hyperband: Off)",
    )
    g.add_argument(
        "--warm-start-from",
        nargs="+",
        metavar="TUNING_JOB",
        help="earlier tuning jobs whose trials this one learns from (at most 5)",
    )
    g.add_argument(
        "--warm-start-type",
        choices=tuning.WARM_START_TYPES,
        default="IdenticalDataAndAlgorithm",
        help="TransferLearning: the data or image changed since",
    )
    g.add_argument("--name", help="the tuning job's name (default: <base job name>-<time>)")
    add_wait(p, poll=60.0)


def run(args: argparse.Namespace) -> None:
    launch(
        args,
        tuning.tune,
        **waiting(args),
        **training_arguments(args),
        ranges=parse_range_flags(args.ranges),
        objective=args.objective,
        direction=args.direction,
        strategy=args.strategy,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs,
        early_stopping=args.early_stopping,
        warm_start_from=args.warm_start_from or (),
        warm_start_type=args.warm_start_type,
        name=args.name,
    )
