"""Dynamic batching: concurrent requests in one worker share forward passes.

Requests put their texts on a queue; one batcher loop takes what is queued (up to
`max_batch_size` texts, waiting at most `max_delay` for more) and runs the model on
its own native thread. Under gunicorn's gevent worker the queue, events and the
batcher are cooperative (monkey-patched) while the forward pass runs on a real OS
thread from gevent's thread pool, so the event loop keeps accepting requests and
answering /ping while the model computes. Without gevent the same code runs on plain
threads.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("serve")


def _gevent_active() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


class _NativeRunner:
    """Runs a function on one dedicated OS thread and waits without blocking the loop."""

    def __init__(self):
        self._pool = None
        if _gevent_active():
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(1)

    def __call__(self, fn: Callable, *args):
        if self._pool is None:
            return fn(*args)  # already on a plain thread: just call it
        ok, value = self._pool.apply(_capture, (fn, args))
        if not ok:
            raise value
        return value


def _capture(fn: Callable, args: tuple) -> tuple[bool, Any]:
    """Hand exceptions back as values: gevent's pool would print each one again."""
    try:
        return True, fn(*args)
    except BaseException as exc:
        return False, exc


class _Request:
    __slots__ = ("done", "error", "result", "texts")

    def __init__(self, texts: Sequence[str]):
        self.texts = texts
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class NotReady(Exception):
    """The model is still loading (or failed to load)."""


class BatchEngine:
    """Owns the model: loads it, warms it up, then serves batches until stopped."""

    def __init__(
        self,
        load: Callable[[], Any],
        max_batch_size: int = 32,
        max_delay_s: float = 0.0,
        on_load_error: Callable[[BaseException], None] | None = None,
    ):
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.model: Any = None
        self.batches = 0
        self.texts = 0
        self._load = load
        self._on_load_error = on_load_error
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._ready = threading.Event()
        self._run_native = _NativeRunner()
        self._thread = threading.Thread(target=self._main, name="batch-engine", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def predict(self, texts: Sequence[str], timeout: float | None = None):
        """Probabilities for `texts`, computed in a batch with whatever else is queued."""
        if not self.ready:
            raise NotReady("model is not loaded yet")
        request = _Request(texts)
        self._queue.put(request)
        if not request.done.wait(timeout):
            raise TimeoutError(f"no answer within {timeout} s")
        if request.error is not None:
            raise request.error
        return request.result

    # --- the batcher loop ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            self.model = self._run_native(self._load)
            self._run_native(self.model.warm_up)
        except BaseException as exc:
            log.exception("model failed to load")
            if self._on_load_error:
                self._on_load_error(exc)
            return
        self._ready.set()
        while True:
            batch = self._collect()
            self._run(batch)

    def _collect(self) -> list[_Request]:
        first = self._queue.get()
        batch, size = [first], len(first.texts)
        deadline = time.monotonic() + self.max_delay_s
        while size < self.max_batch_size:
            try:
                remaining = deadline - time.monotonic()
                nxt = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            batch.append(nxt)
            size += len(nxt.texts)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        try:
            probs = self._run_native(self.model.predict_proba, texts)
        except BaseException as exc:
            for r in batch:
                r.error = exc
                r.done.set()
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for r in batch:
            r.result = probs[start : start + len(r.texts)]
            start += len(r.texts)
            r.done.set()
