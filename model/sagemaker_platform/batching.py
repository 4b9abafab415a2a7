"""Dynamic batching: concurrent requests in one worker share forward passes.

Requests put their records on a queue; one batcher loop takes what is queued (up to
`max_batch_size` records, waiting at most `max_delay` for more, or without one, a few
milliseconds for the clients the last batch answered) and runs the model on its own
native thread (the plug-in's `predict`, which may plan its own forward passes).
Under gunicorn's gevent worker the queue, events and the batcher are cooperative
(monkey-patched) while the forward pass runs on a real OS thread from gevent's thread
pool, so the event loop keeps accepting requests and answering /ping while the model
computes. Without gevent the same code runs on plain threads.

Because the forward pass runs on a native thread, gunicorn's worker timeout never
fires for it: the event loop keeps sending heartbeats while the thread is stuck. The
engine is its own watchdog instead. A call to the model's `predict` still running
`stuck_after_s` after it started is given up: its batch's requests fail with `Stuck`
(the service answers 504), queued and later ones with `NotReady` (503), and once those
answers are out `on_stuck` is called, which in the server exits the worker so that
gunicorn forks a fresh one. A batch of many records goes to the model in several calls
(`PASSES_PER_CALL`), so that a long request is never taken for a stuck one, and stops
at the next call once all its callers have stopped waiting.

On a multi-model endpoint each loaded model has its engine, named (`name`) in its log
lines, and `close` ends one when its model is unloaded: the requests queued before it
are answered, later ones are `NotReady`, and the model is let go.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import logs
from .errors import UserError
from .native import capture, gevent_active, here, stack_of

log = logging.getLogger("serve")

# Without a max delay, how long a batch waits for the clients the last batch answered:
# until none has arrived for REFILL_GAP_S, and never longer than REFILL_MAX_S in all.
REFILL_GAP_S = 0.002
REFILL_MAX_S = 0.005
# A batch larger than this many `max_batch_size` passes (a request of many records: a
# batch transform file, a large real-time body) goes to the model in calls of at most
# that many records. The watchdog (`stuck_after_s`) then times one call, not a whole
# request: a request that is only long is not taken for a stuck pass, which replaced the
# worker (10,000 texts took 78 s in fp32 on 2 cores, past the 60 s timeout). And a
# request whose caller has stopped waiting (it got its 504) stops computing at the next
# call. Within a call the plug-in still plans its passes (grouping texts by length).
PASSES_PER_CALL = 16


class _Overrun(Exception):
    """The function was still running when the wait ran out."""


class _NativeRunner:
    """Runs a function on an OS thread and waits for it, at most `timeout` seconds,
    without blocking gevent's loop. The function itself cannot be interrupted: on
    `_Overrun` it is still running, and its thread is lost to the caller."""

    def __init__(self):
        self._pool = None
        self._running: tuple[int, Any] | None = None  # the thread of the call in progress
        if gevent_active():
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(1)

    def __call__(
        self,
        fn: Callable,
        *args,
        timeout: float | None = None,
        began: Callable[[], float | None] | None = None,
    ):
        """`fn(*args)`, given `timeout` seconds; with `began` (when `fn` really started,
        or None while it waits its turn), counted from that start."""
        fn = self._tracked(fn)
        if self._pool is not None:
            result = self._pool.spawn(capture, fn, args)
            wait, ready = result.wait, result.ready
        else:  # plain threads: a daemon thread per call, so that a stuck one is left behind
            done, box = threading.Event(), []

            def target():
                box.append(capture(fn, args))
                done.set()

            threading.Thread(target=target, name="forward", daemon=True).start()
            wait, ready = done.wait, done.is_set
        wait(timeout)
        while not ready() and began is not None:
            start = began()
            remaining = timeout if start is None else start + timeout - time.monotonic()
            if remaining <= 0:
                break
            wait(remaining)
        if not ready():
            raise _Overrun
        ok, value = result.get() if self._pool is not None else box[0]
        if not ok:
            raise value
        return value

    def _tracked(self, fn: Callable) -> Callable:
        def run(*args):
            mine = self._running = here()
            try:
                return fn(*args)
            finally:
                if self._running is mine:  # not a later call's (after an overrun)
                    self._running = None

        return run

    def where(self) -> str:
        """Where the call in progress is now (`native.stack_of`), for the log line of one
        that overran; empty when none runs."""
        return stack_of(self._running)

    def close(self) -> None:
        """Let the OS thread go (gevent's pool keeps its idle thread otherwise)."""
        if self._pool is not None:
            self._pool.kill()


class _Request:
    __slots__ = ("collected", "done", "error", "records", "result")

    def __init__(self, records: Sequence[str]):
        self.records = records
        self.done = threading.Event()  # the engine has set result or error
        self.collected = threading.Event()  # the caller has taken its answer
        self.result: Any = None
        self.error: BaseException | None = None


class NotReady(Exception):
    """No model to answer with: still loading, failed to load, or being replaced."""


class Stuck(TimeoutError):
    """The forward pass this request was in ran past the engine's limit."""


_CLOSE = object()  # on the queue: the engine ends once the requests before it are answered


class BatchEngine:
    """Owns the model: loads it, warms it up, then serves batches until stopped."""

    def __init__(
        self,
        load: Callable[[], Any],
        max_batch_size: int = 32,
        max_delay_s: float = 0.0,
        on_load_error: Callable[[BaseException], None] | None = None,
        stuck_after_s: float | None = None,
        on_stuck: Callable[[BaseException], None] | None = None,
        flush_grace_s: float = 0.2,
        name: str | None = None,
    ):
        self.name = name  # the model's, on a multi-model endpoint: in every log line
        self.error: BaseException | None = None  # why the model failed to load
        self._closing = False  # `close` was called
        self._closed = False  # the batcher has reached the end of the queue it left
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.stuck_after_s = stuck_after_s
        self.flush_grace_s = flush_grace_s
        self.model: Any = None
        self.batches = 0
        self.records = 0
        self._answered = 0  # requests in the last batch
        self._load = load
        self._on_load_error = on_load_error
        self._on_stuck = on_stuck
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._ready = threading.Event()
        self._settled = threading.Event()  # ready, or never will be again
        self.not_ready_reason = "model is loading"
        self._run_native = _NativeRunner()
        self._thread = threading.Thread(target=self._main, name="batch-engine", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until the model is ready or has failed to load; False on timeout."""
        return self._settled.wait(timeout)

    def where(self) -> str:
        """Where the load, warm-up or forward pass in progress is now, innermost frame
        first (`native.stack_of`): for the log line of one that overran."""
        return self._run_native.where()

    def close(self, reason: str = "model was unloaded") -> None:
        """Stop taking requests: those queued already are answered, later ones get
        `NotReady(reason)`; then the batcher ends and lets the model go."""
        self._closing = True
        self.not_ready_reason = reason
        self._ready.clear()
        self._queue.put(_CLOSE)

    def loaded(self, timeout: float | None = None) -> Any:
        """The model, once loaded and warm: waits for it, at most `timeout` seconds;
        `NotReady` if it is not (still loading, failed, or being replaced)."""
        self._settled.wait(timeout)
        if not self.ready:
            raise NotReady(self.not_ready_reason)
        return self.model

    def predict(self, records: Sequence[str], timeout: float | None = None):
        """The outputs for `records`, computed in a batch with whatever else is queued.

        A request that arrives while the model is still loading (a worker gunicorn has
        just replaced) waits for it, within the same `timeout`, rather than failing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._settled.wait(timeout)
        if not self.ready:
            raise NotReady(self.not_ready_reason)
        request = _Request(records)
        try:
            self._queue.put(request)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not request.done.wait(remaining):
                raise TimeoutError(f"no answer within {timeout} s")
            if request.error is not None:
                raise request.error
            return request.result
        finally:
            request.collected.set()

    # --- the batcher loop ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            started = time.monotonic()
            self.model = self._run_native(self._load)
            loaded = time.monotonic()
            self._run_native(self.model.warm_up)
            if self.name is None:
                log.info(
                    "ready load_seconds=%.3f warm_up_seconds=%.3f",
                    loaded - started,
                    time.monotonic() - loaded,
                )
            else:
                log.info(
                    "ready %s",
                    logs.kv(
                        model=self.name,
                        load_seconds=round(loaded - started, 3),
                        warm_up_seconds=round(time.monotonic() - loaded, 3),
                        worker_pid=os.getpid(),
                    ),
                )
        except BaseException as exc:
            # One line that says why; a traceback only for what is not the model's fault
            # (a UserError: a corrupt model directory, a failed sample request).
            log.error(
                "model failed to load: %s%s",
                "" if self.name is None else logs.kv(model=self.name) + " ",
                str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}",
                exc_info=None if isinstance(exc, UserError) else exc,
            )
            self.model = None
            self.error = exc
            self.not_ready_reason = "model failed to load"
            self._run_native.close()
            self._settled.set()
            if self._on_load_error:
                self._on_load_error(exc)
            return
        if self._closing:  # closed while it loaded: never ready
            self._end()
            return
        self._ready.set()
        self._settled.set()
        while (batch := self._collect()) and self._run(batch) and not self._closed:
            pass
        if self._closed:
            self._end()

    def _end(self) -> None:
        """After `close`: every request still queued gets `NotReady`, the model goes."""
        self._ready.clear()
        self._settled.set()
        while True:
            try:
                r = self._queue.get_nowait()
            except queue.Empty:
                break
            if r is not _CLOSE:
                r.error = NotReady(self.not_ready_reason)
                r.done.set()
        self.model = None
        self._run_native.close()

    def _collect(self) -> list[_Request]:
        """The next batch: the first queued request and what follows it, up to
        max_batch_size records. With a max delay, wait that long for more. Without one,
        take what queued while the last batch ran, and if that is fewer requests than
        the last batch answered, wait briefly for those clients to come back: a client
        pool, or batch transform's concurrent requests, resends as soon as it is
        answered, and without the wait the batches would alternate large and small."""
        expected = self._queue.qsize() + self._answered  # those queued, and returners
        first = self._queue.get()
        if first is _CLOSE:
            self._closed = True
            return []
        batch, size = [first], len(first.records)
        started = last = time.monotonic()
        while size < self.max_batch_size:
            if self.max_delay_s:
                remaining = started + self.max_delay_s - time.monotonic()
            elif len(batch) < expected:
                deadline = min(started + REFILL_MAX_S, last + REFILL_GAP_S)
                remaining = deadline - time.monotonic()
            else:
                remaining = 0.0
            try:
                nxt = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if nxt is _CLOSE:
                self._closed = True
                break
            batch.append(nxt)
            size += len(nxt.records)
            last = time.monotonic()
        self._answered = len(batch)
        return batch

    def _run(self, batch: list[_Request]) -> bool:
        """Run one batch, in calls of at most `PASSES_PER_CALL` passes; False once the
        engine has given up on a stuck one."""
        records = [t for r in batch for t in r.records]
        step = self.max_batch_size * PASSES_PER_CALL
        parts = []
        for start in range(0, len(records), step):
            if start and all(r.collected.is_set() for r in batch):
                return True  # every caller has stopped waiting (answered: timed out)
            part = records[start : start + step]
            try:
                outputs = self._run_native(
                    self.model.predict,
                    part,
                    timeout=self.stuck_after_s,
                    began=getattr(self.model, "began", None),
                )
            except _Overrun:
                self._give_up(batch, len(part))
                return False
            except BaseException as exc:
                self._fail(batch, exc)
                return True
            if len(outputs) != len(part):  # never hand a request someone else's answers
                self._fail(
                    batch,
                    RuntimeError(
                        f"predict returned {len(outputs)} outputs for {len(part)} records"
                    ),
                )
                return True
            parts.append(outputs)
        outputs = _join(parts)
        self.batches += 1
        self.records += len(records)
        start = 0
        for r in batch:
            r.result = outputs[start : start + len(r.records)]
            start += len(r.records)
            r.done.set()
        return True

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for r in batch:
            r.error = exc
            r.done.set()

    def _give_up(self, batch: list[_Request], n_records: int) -> None:
        """The forward pass is stuck and cannot be interrupted: answer everyone, then
        hand over to `on_stuck` (the server exits the worker; gunicorn replaces it)."""
        error = Stuck(f"the forward pass ran longer than {self.stuck_after_s:g} s")
        self.not_ready_reason = "this worker is being replaced"
        self._ready.clear()  # /ping 503 and new requests NotReady from here on
        log.error(
            "forward pass stuck: batch of %d records, %d requests, over %g s; giving up %s",
            n_records,
            len(batch),
            self.stuck_after_s,
            logs.kv(at=self.where()),
        )
        failed = list(batch)
        for r in batch:
            r.error = error
            r.done.set()
        while True:
            try:
                r = self._queue.get_nowait()
            except queue.Empty:
                break
            if r is _CLOSE:  # closed while the batch hung: let the model go after
                self._closed = True
                continue
            r.error = NotReady(self.not_ready_reason)
            r.done.set()
            failed.append(r)
        # Let every waiting request take its answer (each is a greenlet that writes its
        # response as soon as it runs), then a moment more for the writes to finish.
        deadline = time.monotonic() + 5.0
        for r in failed:
            r.collected.wait(max(0.0, deadline - time.monotonic()))
        time.sleep(self.flush_grace_s)
        if self._on_stuck:
            self._on_stuck(error)


def _join(parts: list[Sequence[Any]]) -> Sequence[Any]:
    """The outputs of consecutive `predict` calls as one, of the type it returns: a torch
    tensor or numpy array (joined along the first axis), or any other sequence (a list)."""
    if len(parts) == 1:
        return parts[0]
    kind = type(parts[0]).__module__.split(".")[0]
    if kind == "torch":
        import torch

        return torch.cat(parts)
    if kind == "numpy":
        import numpy

        return numpy.concatenate(parts)
    return [output for part in parts for output in part]
