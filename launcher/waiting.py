"""Waiting on SageMaker: poll a status, print each change, give up after a timeout.

One loop serves training jobs, endpoints and transform jobs. It prints a plain line per
status change (CI logs and notebooks both read it; the SDK's own waiters draw a rich
live panel that a CI log does not show) and, for training, the job's CloudWatch log
lines as they arrive. A timeout ends the wait, never the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from .settings import LauncherError


class Status(NamedTuple):
    state: str  # TrainingJobStatus, EndpointStatus, TransformJobStatus
    detail: str = ""  # secondary status, message or failure reason


class JobFailed(RuntimeError):
    """A job, endpoint or request ended in a state other than success."""

    def __init__(self, message: str, info: Any = None):
        super().__init__(message)
        self.info = info  # what the launcher knows about it (e.g. TrainingJobInfo)


class WaitTimeout(TimeoutError):
    """The resource was still not done when the wait gave up; it keeps running."""

    def __init__(self, what: str, status: Status, seconds: float):
        self.status = status
        super().__init__(
            f"{what} is still {status.state} after {seconds:.0f} s; it keeps running. "
            "Follow it again with `python -m launcher wait`, or in the SageMaker console."
        )


def say(line: str) -> None:
    print(line, flush=True)


def wait_for(
    what: str,
    poll: Callable[[], Status],
    done: Collection[str],
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
    on_tick: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    echo: Callable[[str], None] = say,
) -> Status:
    """Poll until the state is in `done`; return that Status or raise WaitTimeout.

    `on_tick` runs after every poll, the last one included, to stream logs.
    """
    if poll_seconds <= 0:
        raise LauncherError(f"poll interval {poll_seconds}: expected a positive number of seconds")
    start = clock()
    last: Status | None = None
    while True:
        status = poll()
        if status != last:
            echo(f"{what}: {status.state}" + (f" - {status.detail}" if status.detail else ""))
            last = status
        if on_tick is not None:
            on_tick()
        if status.state in done:
            return status
        elapsed = clock() - start
        if timeout_seconds is not None and elapsed >= timeout_seconds:
            raise WaitTimeout(what, status, elapsed)
        remaining = None if timeout_seconds is None else timeout_seconds - elapsed
        sleep(poll_seconds if remaining is None else min(poll_seconds, remaining))


def follow(
    what: str,
    resource: Any,
    status_field: str,
    done: Collection[str],
    *,
    poll_seconds: float,
    timeout_seconds: float | None,
) -> Status:
    """`wait_for` on a `sagemaker.core` resource: refresh it, read `status_field` and why."""

    def poll() -> Status:
        resource.refresh()
        return Status(str(getattr(resource, status_field)), str(resource.failure_reason or ""))

    return wait_for(what, poll, done, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)


class LogFollower:
    """New lines of a job's CloudWatch log streams, one call at a time.

    SageMaker writes training logs to `/aws/sagemaker/TrainingJobs`, one stream per host
    named `<job>/algo-N-<id>`. The SDK's own `MultiLogStreamHandler` builds its client
    from a process-wide default session, so it cannot follow a session (or endpoint) the
    caller chose; this reads the same streams through the caller's boto3 session.
    """

    def __init__(self, logs_client: Any, group: str, prefix: str):
        self.client = logs_client
        self.group = group
        self.prefix = prefix
        self._tokens: dict[str, str | None] = {}

    def new_lines(self) -> list[str]:
        lines = []
        for stream in self._streams():
            host = stream.split("/", 1)[-1]
            while True:
                args = {"nextToken": self._tokens[stream]} if self._tokens.get(stream) else {}
                page = self.client.get_log_events(
                    logGroupName=self.group, logStreamName=stream, startFromHead=True, **args
                )
                self._tokens[stream] = page["nextForwardToken"]
                if not page["events"]:
                    break
                lines += [f"[{host}] {e['message'].rstrip()}" for e in page["events"]]
        return lines

    def _streams(self) -> list[str]:
        try:
            pages = self.client.get_paginator("describe_log_streams").paginate(
                logGroupName=self.group, logStreamNamePrefix=self.prefix
            )
            names = [s["logStreamName"] for page in pages for s in page["logStreams"]]
        except self.client.exceptions.ResourceNotFoundException:
            return []  # the group appears when the first container starts logging
        for name in names:
            self._tokens.setdefault(name, None)
        return sorted(self._tokens)
