"""What several commands share: the help layout and the where, waiting and serving flags."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from typing import Any

from sagemaker_platform.config import ServeConfig, describe

from ..params import parse_pairs, serving_knobs

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


def add_command(
    sub: Any, name: str, summary: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand's parser: `summary` in the command list, `description` atop its help."""
    return sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 88),
        epilog=epilog,
        formatter_class=_Formatter,
    )


def add_target(p: argparse.ArgumentParser, *, role_and_image: bool) -> None:
    g = p.add_argument_group("where")
    g.add_argument("--region", help="AWS region [env: AWS_REGION, AWS_DEFAULT_REGION]")
    if role_and_image:
        g.add_argument(
            "--role",
            metavar="ARN",
            help="execution role SageMaker assumes [env: SAGEMAKER_ROLE_ARN]",
        )
        g.add_argument("--image-uri", metavar="URI", help="this image in ECR [env: IMAGE_URI]")


def add_wait(
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


def add_serving(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
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
            # argparse formats help with %: a setting's own "85%" must be "85%%"
            help=f"{helps[env]}; sets {env} (image default {getattr(defaults, name)})".replace(
                "%", "%%"
            ),
        )
    g.add_argument(
        "--env", action="append", metavar="KEY=VALUE", help="any other variable (repeatable)"
    )


def _flag(field_name: str) -> str:
    return "--" + _KNOB_FLAGS.get(field_name, field_name.replace("_", "-"))


def add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything, print the requests as JSON and send none (no credentials, "
        "region, role or image needed: placeholders stand in for those not given)",
    )


def launch(args: argparse.Namespace, fn: Callable[..., Any], /, *a: Any, **kwargs: Any) -> Any:
    """`fn(*a, **kwargs)`, or with --dry-run its requests printed as JSON (None returned)."""
    if not args.dry_run:
        return fn(*a, **kwargs)
    from ..dryrun import dry_run

    print(dry_run(fn, *a, **kwargs).as_json())
    return None


def target(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_target` flags as keyword arguments: region, and role and image_uri if taken."""
    return {key: getattr(args, key) for key in ("region", "role", "image_uri") if key in args}


def waiting(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_wait` flags as the launch functions' keyword arguments."""
    return {
        "wait": args.wait,
        "poll_seconds": args.poll_seconds,
        "timeout_seconds": args.wait_timeout,
    }


def serving(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_serving` flags: serving= (knobs by ServeConfig field) and env=."""
    knobs = {
        key[len("knob_") :]: value
        for key, value in vars(args).items()
        if key.startswith("knob_") and value is not None
    }
    return {"serving": knobs, "env": parse_pairs(args.env, "--env")}


# --- autoscaling (deploy, autoscale) ---------------------------------------------------------
def add_autoscaling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "autoscaling (realtime and async; registered once the endpoint is InService)"
    )
    g.add_argument("--min-instances", type=int, metavar="N", help="0 only for async")
    g.add_argument("--max-instances", type=int, metavar="N", help="at most this many")
    g.add_argument(
        "--target-invocations-per-instance",
        type=float,
        metavar="T",
        help="realtime: requests per instance per minute to hold (docs/launcher.md: Autoscaling, choosing T)",
    )
    g.add_argument(
        "--target-backlog-per-instance",
        type=float,
        metavar="B",
        help="async: queued requests per instance to hold",
    )
    g.add_argument(
        "--scale-in-cooldown", type=int, metavar="SECONDS", help="after a scale-in (300)"
    )
    g.add_argument(
        "--scale-out-cooldown", type=int, metavar="SECONDS", help="after a scale-out (300)"
    )


def autoscaling(args: argparse.Namespace) -> dict[str, Any]:
    """The `add_autoscaling` flags as keyword arguments."""
    keys = (
        "min_instances",
        "max_instances",
        "target_invocations_per_instance",
        "target_backlog_per_instance",
        "scale_in_cooldown",
        "scale_out_cooldown",
    )
    return {key: getattr(args, key) for key in keys}
