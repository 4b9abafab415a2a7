"""The request bodies one worker holds at once, against a memory budget.

nginx lets 1,024 `/invocations` connections in at once, and a worker holds each request
from its body to its answer: the body, its text, the parsed records, the outputs and the
answer, about five times the body (30 MB for a 5.6 MB JSON body of 10,000 texts). Sixty
such requests took one worker from 279 MB to 2 GB, so a burst of large requests would
get it killed for memory, every request in it lost. Past the budget a request is a 429
before its body is read; a worker holding nothing takes any request the payload limit
allows, so one request always fits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .codecs import HTTPError
from .memory import container_memory_mb

# What a request held at its peak, over its body's size (measured above: 5.4x).
EXPANSION = 5
# The share of the container's memory that the requests in flight may take, all workers
# together; the rest is the models', the interpreters' and torch's.
MEMORY_FRACTION = 0.5


def default_budget_mb(workers: int, memory_mb: float | None = None) -> float:
    """MODEL_SERVER_MAX_INFLIGHT_MB's default: the bodies one worker may hold at once."""
    memory = container_memory_mb() if memory_mb is None else memory_mb
    return MEMORY_FRACTION * memory / max(1, workers) / EXPANSION


class InFlight:
    """One worker's bodies in flight (gevent's greenlets share it: one thread)."""

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.held = 0

    @contextlib.contextmanager
    def admitted(self, length: int | None, limit: int) -> Iterator[None]:
        """Hold a request of `length` bytes (its Content-Length; unknown, the payload
        `limit`) while the block runs, or a 429 if that would pass the budget."""
        size = limit if length is None else min(length, limit)
        if self.held and self.held + size > self.budget:
            raise HTTPError(
                429,
                f"this worker holds {self.held / 2**20:.1f} MB of requests, and this one's "
                f"{size / 2**20:.1f} MB would pass its budget of {self.budget / 2**20:.1f} MB "
                "(MODEL_SERVER_MAX_INFLIGHT_MB); retry shortly",
            )
        self.held += size
        try:
            yield
        finally:
            self.held -= size
