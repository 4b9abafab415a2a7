"""Undo what a failed launch created, so that it leaves nothing behind.

`deploy` creates a model, an endpoint config, an endpoint and its autoscaling, one
request each; `transform` may create a model before its job. If a later step fails
(CreateEndpointConfig refused, the endpoint Failed, a scaling policy denied), what the
earlier steps created would stay, billed or not, and `delete --endpoint` cannot reach a
model or a config that no endpoint names. So each step registers how to undo it before
it runs, and a failure deletes what was registered, in reverse order, best effort, one
line per step; then the error goes on to the caller.

    with Rollback("deploy", session) as undo:
        undo.add(f"model {name}", lambda: client.delete_model(ModelName=name))
        create_model(...)
        ...

A wait that times out rolls nothing back: the resource is still being created, and the
command says so (it exits 1, the endpoint or job keeps going). Neither does a dry run,
which creates nothing. A step registered before its request that then failed finds
nothing to delete: AWS's "could not find" is taken as nothing to undo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .settings import is_dry_run
from .waiting import WaitTimeout, say


class Rollback:
    """The undo steps of one launch (a context manager: they run if it raises)."""

    def __init__(self, command: str, boto_session: Any, keep_on: tuple[type, ...] = (WaitTimeout,)):
        self.command = command
        self.dry = is_dry_run(boto_session)
        self.keep_on = keep_on
        self.steps: list[tuple[str, Callable[[], Any]]] = []
        self.undone: list[str] = []

    def add(self, what: str, undo: Callable[[], Any]) -> None:
        """Register how to undo `what` ("model NAME"), before the request that creates it."""
        self.steps.append((what, undo))

    def __enter__(self) -> Rollback:
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or self.dry or not isinstance(exc, Exception):
            return False
        if isinstance(exc, self.keep_on):
            return False
        if self.steps:
            say(f"{self.command} failed: rolling back what it created")
        for what, undo in reversed(self.steps):
            try:
                undo()
            except Exception as error:
                if _not_found(error):
                    continue  # its request had failed: nothing was created
                say(f"rollback: {what} was not deleted ({_one_line(error)}); delete it yourself")
                continue
            self.undone.append(what)
            say(f"rolled back: deleted {what}")
        return False


def _not_found(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    details = response.get("Error", {})
    message = str(details.get("Message", "")).lower()
    code = str(details.get("Code", ""))
    return code in ("ValidationException", "ObjectNotFoundException") and (
        "could not find" in message or "does not exist" in message or "not found" in message
    )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
