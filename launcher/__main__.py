"""`python -m launcher` (or `byoc-launch`): train, deploy, invoke, transform, delete.

Each subcommand is a thin layer over the Python function of the same name; run one with
`--help` for its options. Exit status: 0 done, 1 the job or endpoint failed or the wait
timed out (the resource keeps running), 2 the launch was refused before any request.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from sagemaker_platform import registry
from sagemaker_platform.config import ServeConfig, TrainSettings, describe

from . import batch, hosting, jobs, metrics
from .params import parse_pairs, serving_knobs
from .settings import LauncherError
from .waiting import JobFailed, WaitTimeout

EPILOG = """\
region, role and image URI come from the flags or from AWS_REGION / AWS_DEFAULT_REGION,
SAGEMAKER_ROLE_ARN and IMAGE_URI. Examples:

  python -m launcher train --train s3://bucket/data/train/ --validation s3://bucket/data/val/ \\
      --hp epochs=5 --hp learning_rate=5e-5 --spot --checkpoint-s3-uri s3://bucket/ckpt/run-1/
  python -m launcher deploy --training-job text-classifier-20250101120000 --max-batch-size 64
  python -m launcher invoke --endpoint text-classifier-20250101-130000 --data '{"text": "hi"}'
  python -m launcher transform --model-name text-classifier-20250101-130000 \\
      --input s3://bucket/batch/in/ --output s3://bucket/batch/out/ --content-type text/csv
  python -m launcher delete --endpoint text-classifier-20250101-130000
"""

# Flag names for the serving knobs: the ServeConfig field, except where that would read
# as something else on this command line (--timeout is the wait's).
_KNOB_FLAGS = {"timeout": "server-timeout"}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs keep their layout; options with a real default (not None, not a switch) show it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default not in (None, argparse.SUPPRESS) and not isinstance(default, bool):
            text += " (default: %(default)s)"
        return text


def _flag(field_name: str) -> str:
    return "--" + _KNOB_FLAGS.get(field_name, field_name.replace("_", "-"))


def _hyperparameter_table() -> str:
    """The platform's hyperparameters, then each shipped plug-in's (`--hp model=NAME`)."""

    def rows(cls) -> str:
        return "\n".join(
            f"  {name:<26} {default:<10} {text}" for name, default, text in describe(cls)
        )

    parts = [
        "hyperparameters (--hp NAME=VALUE; the image's default applies when left out):\n"
        + rows(TrainSettings)
    ]
    for name in registry.available():
        plugin = registry.load(name)
        parts.append(f"model={name}:\n" + rows(plugin.Hyperparameters))
    return "\n\n".join(parts)


def _add_target(p: argparse.ArgumentParser, *, role_and_image: bool) -> None:
    g = p.add_argument_group("where")
    g.add_argument("--region", help="AWS region [env: AWS_REGION, AWS_DEFAULT_REGION]")
    if role_and_image:
        g.add_argument(
            "--role",
            metavar="ARN",
            help="execution role SageMaker assumes [env: SAGEMAKER_ROLE_ARN]",
        )
        g.add_argument("--image-uri", metavar="URI", help="this image in ECR [env: IMAGE_URI]")


def _add_wait(
    p: argparse.ArgumentParser,
    poll: float = 30.0,
    timeout: float | None = None,
    logs: bool = False,
) -> None:
    g = p.add_argument_group("waiting")
    if logs:
        g.add_argument(
            "--no-logs", dest="logs", action="store_false", help="do not stream the job's log"
        )
    g.add_argument("--no-wait", dest="wait", action="store_false", help="return once created")
    g.add_argument(
        "--poll-seconds", type=float, default=poll, metavar="SECONDS", help="status poll interval"
    )
    g.add_argument(
        "--wait-timeout",
        type=float,
        default=timeout,
        metavar="SECONDS",
        help="stop waiting after this long (exit 1); the job keeps running",
    )


def _add_serving(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    g = p.add_argument_group("serving settings (environment variables of the model)")
    helps = {env: text for env, _default, text in describe(ServeConfig)}
    defaults = ServeConfig()
    for name, env in serving_knobs().items():
        if name in skip:
            continue
        g.add_argument(
            _flag(name),
            dest=f"knob_{name}",
            metavar="VALUE",
            help=f"{helps[env]}; sets {env} (image default {getattr(defaults, name)})",
        )
    g.add_argument(
        "--env", action="append", metavar="KEY=VALUE", help="any other variable (repeatable)"
    )


def _knobs(args: argparse.Namespace) -> dict[str, str]:
    return {
        key[len("knob_") :]: value
        for key, value in vars(args).items()
        if key.startswith("knob_") and value is not None
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launcher",
        description="Launch the text-classifier image on Amazon SageMaker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str, epilog: str | None = None):
        return sub.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, 88),
            epilog=epilog,
            formatter_class=_Formatter,
        )

    # --- train
    p = command(
        "train",
        "start a training job on the image",
        "Start a SageMaker training job: S3 channels in, model.tar.gz out. Hyperparameters "
        "are checked with the container's own parser before anything is sent.",
        _hyperparameter_table(),
    )
    _add_target(p, role_and_image=True)
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
    g = p.add_argument_group("job")
    g.add_argument(
        "--hp", action="append", metavar="NAME=VALUE", help="a hyperparameter (repeatable)"
    )
    g.add_argument(
        "--base-job-name",
        default=jobs.DEFAULT_BASE_JOB_NAME,
        help="the job is named <this>-<timestamp>",
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
    g.add_argument(
        "--tensorboard-s3-uri",
        metavar="S3_URI",
        help="TensorBoard event files (default: <output>/tensorboard)",
    )
    _add_wait(p, logs=True)

    # --- deploy
    p = command(
        "deploy",
        "create a model, endpoint config and endpoint",
        "Deploy a training job's model.tar.gz: real-time (default), asynchronous "
        "(--mode async --async-output-s3-uri) or serverless (CPU only; the image must be "
        "under 10 GB).",
    )
    _add_target(p, role_and_image=True)
    g = p.add_argument_group("model").add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="a Completed training job")
    g.add_argument("--model-data", metavar="S3_URI", help="a model.tar.gz")
    g = p.add_argument_group("endpoint")
    g.add_argument(
        "--name", help="of the model, config and endpoint (default: text-classifier-<time>)"
    )
    g.add_argument("--mode", choices=hosting.MODES, default="realtime", help="kind of endpoint")
    g.add_argument(
        "--instance-type", default=hosting.DEFAULT_INSTANCE_TYPE, help="realtime and async"
    )
    g.add_argument("--instance-count", type=int, default=1, metavar="N", help="realtime and async")
    g.add_argument("--async-output-s3-uri", metavar="S3_URI", help="async: where responses go")
    g.add_argument("--async-failure-s3-uri", metavar="S3_URI", help="async: where errors go")
    g.add_argument(
        "--async-max-concurrent", type=int, metavar="N", help="async: requests per instance at once"
    )
    g.add_argument(
        "--serverless-memory-mb",
        type=int,
        default=6144,
        choices=hosting.SERVERLESS_MEMORY_MB,
        metavar="MB",
        help="serverless: memory, 1024 to 6144 in 1024 steps",
    )
    g.add_argument(
        "--serverless-max-concurrency",
        type=int,
        default=5,
        metavar="N",
        help="serverless: concurrent invocations, 1 to 200",
    )
    _add_serving(p)
    _add_wait(p)

    # --- invoke
    p = command(
        "invoke",
        "send one payload to an endpoint",
        "Send a payload through sagemaker-runtime and print the response. With "
        "--async-input-s3-uri the payload is written to S3 and sent asynchronously, and "
        "the response is fetched from S3 when it appears.",
    )
    _add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="the request body, as text")
    g.add_argument("--file", type=Path, help="a file holding the request body ('-' for stdin)")
    p.add_argument(
        "--content-type",
        choices=hosting.CONTENT_TYPES,
        help="(default: from the file extension, else application/json)",
    )
    p.add_argument("--accept", help="response content type to ask for")
    p.add_argument(
        "--async-input-s3-uri",
        metavar="S3_URI",
        help="async endpoints: an S3 key, or a prefix ending in /, for the payload",
    )
    _add_wait(p, poll=5.0, timeout=900.0)

    # --- transform
    p = command(
        "transform",
        "run a batch transform job over an S3 prefix",
        "Batch transform over JSON Lines or CSV: SplitType Line, MultiRecord batches, "
        "AssembleWith Line, and the limits the container reports at /execution-parameters.",
    )
    _add_target(p, role_and_image=True)
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
        choices=batch.CONTENT_TYPES,
        default="application/jsonlines",
        help="of the input",
    )
    g.add_argument("--accept", help="of the output (default: the input's)")
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
        "--max-payload-mb", type=int, metavar="MB", help="per request, 1 to 100 (default: 6)"
    )
    _add_serving(p, skip=("max_payload_mb",))
    _add_wait(p)

    # --- delete
    p = command(
        "delete",
        "delete an endpoint, its endpoint config and its model",
        "Delete an endpoint, then its endpoint config and the model(s) it served.",
    )
    _add_target(p, role_and_image=False)
    p.add_argument("--endpoint", required=True, metavar="NAME", help="endpoint name")
    p.add_argument("--keep-model", action="store_true", help="leave the model(s) in place")

    # --- wait
    p = command(
        "wait",
        "follow a training job, endpoint or transform job",
        "Print status changes (and a training job's log) until it ends; exit 0 on success.",
    )
    _add_target(p, role_and_image=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--training-job", metavar="NAME", help="until Completed, Failed or Stopped")
    g.add_argument("--endpoint", metavar="NAME", help="until InService or Failed")
    g.add_argument("--transform-job", metavar="NAME", help="until Completed, Failed or Stopped")
    p.add_argument(
        "--poll-seconds", type=float, default=30.0, metavar="SECONDS", help="poll interval"
    )
    p.add_argument("--wait-timeout", type=float, metavar="SECONDS", help="give up after this long")
    p.add_argument(
        "--no-logs", dest="logs", action="store_false", help="training: do not stream its log"
    )

    # --- metrics
    p = command(
        "metrics",
        "print the metric definitions (for console-created jobs)",
        "The name=value metric regexes the training log matches, as the JSON that "
        "MetricDefinitions takes or as a Markdown table.",
    )
    p.add_argument("--format", choices=("json", "markdown"), default="json", help="output form")
    return parser


def run(args: argparse.Namespace) -> None:
    where = {"region": args.region} if hasattr(args, "region") else {}
    waiting = {}
    if hasattr(args, "wait") and args.command != "invoke":
        waiting = {
            "wait": args.wait,
            "poll_seconds": args.poll_seconds,
            "timeout_seconds": args.wait_timeout,
        }
    if args.command == "train":
        jobs.train(
            **where,
            **waiting,
            role=args.role,
            image_uri=args.image_uri,
            logs=args.logs,
            train=args.train,
            validation=args.validation,
            pretrained=args.pretrained,
            output_s3_uri=args.output_s3_uri,
            hyperparameters=parse_pairs(args.hp, "--hp"),
            base_job_name=args.base_job_name,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            volume_size_gb=args.volume_size_gb,
            max_run_seconds=args.max_run,
            spot=args.spot,
            max_wait_seconds=args.max_wait,
            checkpoint_s3_uri=args.checkpoint_s3_uri,
            tensorboard_s3_uri=args.tensorboard_s3_uri,
        )
    elif args.command == "deploy":
        hosting.deploy(
            **where,
            **waiting,
            role=args.role,
            image_uri=args.image_uri,
            training_job=args.training_job,
            model_data=args.model_data,
            name=args.name,
            mode=args.mode,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            serving=_knobs(args),
            env=parse_pairs(args.env, "--env"),
            async_output_s3_uri=args.async_output_s3_uri,
            async_failure_s3_uri=args.async_failure_s3_uri,
            async_max_concurrent_invocations=args.async_max_concurrent,
            serverless_memory_mb=args.serverless_memory_mb,
            serverless_max_concurrency=args.serverless_max_concurrency,
        )
    elif args.command == "invoke":
        _invoke(args, where)
    elif args.command == "transform":
        batch.transform(
            **where,
            **waiting,
            role=args.role,
            image_uri=args.image_uri,
            model_name=args.model_name,
            training_job=args.training_job,
            model_data=args.model_data,
            input_s3_uri=args.input,
            output_s3_uri=args.output,
            content_type=args.content_type,
            accept=args.accept,
            name=args.name,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            max_concurrent_transforms=args.max_concurrent_transforms,
            max_payload_mb=args.max_payload_mb,
            serving=_knobs(args),
            env=parse_pairs(args.env, "--env"),
        )
    elif args.command == "delete":
        hosting.delete(args.endpoint, keep_model=args.keep_model, **where)
    elif args.command == "wait":
        follow = {"poll_seconds": args.poll_seconds, "timeout_seconds": args.wait_timeout}
        if args.training_job:
            jobs.wait_for_training(args.training_job, logs=args.logs, **where, **follow)
        elif args.endpoint:
            hosting.wait_for_endpoint(args.endpoint, **where, **follow)
        else:
            batch.wait_for_transform(args.transform_job, **where, **follow)
    elif args.command == "metrics":
        print(metrics.as_json() if args.format == "json" else metrics.as_markdown())


def _invoke(args: argparse.Namespace, where: dict) -> None:
    if args.file is not None:
        payload = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        content_type = args.content_type or (
            hosting.content_type_for(args.file) if str(args.file) != "-" else None
        )
    else:
        payload, content_type = args.data, args.content_type
    common = {"content_type": content_type, "accept": args.accept, **where}
    if args.async_input_s3_uri:
        result = hosting.invoke_async(
            args.endpoint,
            payload,
            input_s3_uri=args.async_input_s3_uri,
            wait=args.wait,
            poll_seconds=args.poll_seconds,
            timeout_seconds=args.wait_timeout,
            **common,
        )
    else:
        result = hosting.invoke(args.endpoint, payload, **common)
    if isinstance(result, hosting.Response):
        sys.stdout.write(result.text + ("" if result.text.endswith("\n") else "\n"))
    else:
        print(result)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        from botocore.exceptions import BotoCoreError, ClientError

        if _is_role_error(exc):
            print(f"error: {exc}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
