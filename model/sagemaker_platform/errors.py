"""Errors that know who is at fault, and the one place that reports a failed job.

`UserError` is bad input (data, hyperparameters, a model folder): its message is the
whole story and no traceback is needed to act on it. Anything else is a bug in this
code or the platform. Either way SageMaker shows the first line of `output/failure`
as the job's FailureReason, so that line must be plain and specific.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from .logs import one_line

log = logging.getLogger(__name__)

# SageMaker truncates FailureReason to 1024 characters.
_REASON_LIMIT = 1024


class UserError(Exception):
    """The input is wrong; the message says what and how to fix it."""


class Interrupted(BaseException):
    """The platform stopped the job (SIGTERM: a spot interruption or StopTrainingJob).

    Not a failure of the input: no failure file, and the exit status is the shell's
    128 + signal number (143 for SIGTERM). A BaseException, like SystemExit, so that no
    `except Exception` on the way out mistakes it for an error.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + int(signum)


def write_failure(path: Path, exc: BaseException) -> None:
    """Write the reason (first line) and the traceback to SageMaker's failure file."""
    kind = "" if isinstance(exc, UserError) else f"{type(exc).__name__}: "
    # One line, whole: a line break inside a file name must not cut the reason short.
    reason = one_line(kind + str(exc)).strip() or type(exc).__name__
    body = reason[:_REASON_LIMIT] + "\n\n" + "".join(traceback.format_exception(exc))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)


def run_job(job: Callable[[], None], failure_file: Callable[[], Path], write: bool = True) -> int:
    """Run `job`; on any failure log it, write the failure file and return 1 (else 0).

    `write=False` is for ranks other than 0 in a multi-host job: they exit non-zero but
    leave the failure file to the rank whose reason SageMaker reports. An `Interrupted`
    job returns its exit code and writes nothing (the job logged where it stopped).

    A job succeeds only by returning. The platform never exits from inside `job` (it
    exits with `exit_with`, after), so a `SystemExit`, even `sys.exit(0)`, comes from code
    it calls (a plug-in, a library) and stopped the job short of its model: a failure.
    """
    try:
        job()
    except KeyboardInterrupt:
        raise
    except Interrupted as exc:
        return exc.exit_code
    except BaseException as caught:
        exc = _early_exit(caught) if isinstance(caught, SystemExit) else caught
        if isinstance(exc, UserError):
            log.error("training failed: %s", exc)
        else:
            log.exception("training failed with an unexpected error")
        if write:
            write_failure(failure_file(), exc)
        return 1
    return 0


def _early_exit(exc: SystemExit) -> UserError:
    """The reason for a job that exited instead of returning; the traceback (the cause)
    says which code called sys.exit."""
    failure = UserError(
        f"the job's code called sys.exit({exc.code!r}) before the job finished: a plug-in "
        "must return or raise an error, never exit; the job counts as failed"
    )
    failure.__cause__ = exc
    return failure


def exit_with(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
