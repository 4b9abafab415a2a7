"""Where a worker's model runs: device, precision, threads and the CPU cores it shares.

`serve` resolves these once per worker (and, for bf16 on a CPU, sets the process's
malloc to keep freed memory for the next batch: `allocator`) and hands them to the
plug-in's `load` as a `Runtime`. The platform runs every `predict` and `warm_up` inside
`computing()`, which tells the other workers this one computes and takes this worker's
share of the cores (all of them when it computes alone; `cores`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import allocator, cores, cpu_bf16, native
from .cores import CoreShare
from .errors import UserError

if TYPE_CHECKING:
    from .config import ServeConfig

log = logging.getLogger("serve")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("MODEL_SERVER_DEVICE=cuda but no GPU is visible")
    return requested


def resolve_precision(requested: str, device: str) -> str:
    """`auto`: bf16 on a GPU that has it and on a CPU where it pays (`cpu_bf16.cpu_bf16_pays`),
    fp16 on older GPUs, else fp32.
    int8 is opt-in and CPU-only, fp16 GPU-only. A plug-in may compute in another
    precision than this (and says so in its `model loaded` line)."""
    import torch

    if requested == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_bf16.cpu_bf16_pays() else "fp32"
    if requested == "int8" and device != "cpu":
        raise UserError("MODEL_SERVER_PRECISION=int8 is CPU-only; use bf16 or fp16 on a GPU")
    if requested == "fp16" and device != "cuda":
        raise UserError("MODEL_SERVER_PRECISION=fp16 needs a GPU; use bf16 or int8 on CPU")
    return requested


T = TypeVar("T")
R = TypeVar("R")

# `in_parts` splits a batch only where it holds this many records a thread. MiniLM on 2
# cores, bf16, two one-thread halves against one two-thread call: 1.076x for a batch of
# 16 texts, 1.118x for 32, but 0.99x for 8 and 0.91x for 4 (on small parts Python's work
# per operation, which the GIL serialises, outweighs the gain). docs/results.md. On AMX,
# with the layers compiled (`bert.PackedLayer`) and the part threads kept, halves of 16
# ran 1.11x one call (docs/results.md, "Compiled layers").
MIN_PART = 8


@dataclass
class Runtime:
    """What a plug-in's `load` gets: where and how to run, resolved for this worker."""

    device: str = "cpu"  # "cpu" or "cuda"
    precision: str = "fp32"  # "fp32", "bf16", "fp16" or "int8" (MODEL_SERVER_PRECISION)
    max_batch_size: int = 32  # records per `predict` call at most
    share: CoreShare | None = None  # CPU cores shared with the other workers, if any
    split_batches: bool = True  # `in_parts` may split (off: every batch in one call)
    torchscript: bool = True  # the plug-in may compile its network (MODEL_SERVER_TORCHSCRIPT)

    @classmethod
    def resolve(
        cls,
        precision: str = "auto",
        device: str = "auto",
        threads: int = 0,
        max_batch_size: int = 32,
        share: CoreShare | None = None,
        torchscript: bool = True,
    ) -> Runtime:
        import torch

        if threads:
            torch.set_num_threads(threads)
        resolved = resolve_device(device)
        chosen = resolve_precision(precision, resolved)
        allocator.for_serving(resolved, chosen)  # the process serves from here on
        return cls(resolved, chosen, max_batch_size, share, torchscript=torchscript)

    @classmethod
    def for_worker(cls, cfg: ServeConfig) -> Runtime:
        """The runtime `serve`'s settings give a worker, its cores shared with the other
        workers' (`cores.installed`)."""
        return cls.resolve(
            cfg.precision,
            cfg.device,
            cfg.threads,
            cfg.max_batch_size,
            cores.installed(),
            cfg.torchscript,
        )

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """Tell the other workers this one computes, and take its share of the cores:
        all of them when it computes alone."""
        if self.share is None:
            yield
            return
        import torch

        with self.share.computing():
            # torch sets a thread's count on its first parallel op from the last count
            # set anywhere: let that happen first, or this thread's setting is lost.
            torch.get_num_threads()
            torch.set_num_threads(self.share.threads())
            yield

    def in_parts(
        self,
        fn: Callable[[Sequence[T]], R],
        records: Sequence[T],
        cost: Callable[[T], float] | None = None,
    ) -> list[R]:
        """`fn` of consecutive parts of `records` at once, one part per CPU thread, where
        this worker computes alone; elsewhere `[fn(records)]`. Results in order. With
        `cost` (a record's work, such as a text's token count) the parts hold near-equal
        work, so that no thread waits on a longer one; without it, near-equal counts.

        Alone: on a CPU with several torch threads and no core share (one worker, or a
        model in a process of its own), and a batch of at least `MIN_PART` records per
        thread (a part of long records may hold fewer). The first part runs on the
        caller's thread, each other on a part thread kept from batch to batch
        (`_PartThread`), each with one torch thread: the small operations of a network
        (a text's attention, a LayerNorm) scale poorly across the threads of one call,
        and separate calls keep every core busy. `fn` must be safe to call from several
        threads at once, as a network in eval mode under `torch.inference_mode()` is."""
        import torch

        threads = torch.get_num_threads()
        alone = self.device == "cpu" and self.share is None and self.split_batches
        parts = min(threads, len(records) // MIN_PART) if alone else 1
        if parts < 2:
            return [fn(records)]
        ends = _even_ends([cost(r) for r in records] if cost else [1.0] * len(records), parts)
        chunks = [records[i:j] for i, j in itertools.pairwise([0, *ends])]
        with _PARTS.taken(parts - 1) as helpers:
            if helpers is None:  # another caller's parts are computing: this one in one call
                return [fn(records)]
            torch.set_num_threads(1)
            joins = []
            try:
                for helper, chunk in zip(helpers, chunks[1:], strict=True):
                    joins.append(helper.start(fn, chunk))
                first = fn(chunks[0])
            finally:
                # Never leave a part computing into the next batch.
                outcomes = [join() for join in joins]
                torch.set_num_threads(threads)
        for ok, value in outcomes:
            if not ok:
                raise value
        return [first, *(value for _, value in outcomes)]

    def yield_cores_before(self, modules: Iterable[Any]) -> None:
        """Before each of `modules` (a network's repeated blocks) runs: if another worker
        started computing, drop to this worker's share now rather than compete for its
        cores until the batch ends. A no-op without a core share."""
        if self.share is None:
            return
        import torch

        share = self.share

        def drop(module, args) -> None:
            threads = share.threads()
            if threads < torch.get_num_threads():
                torch.set_num_threads(threads)

        for module in modules:
            module.register_forward_pre_hook(drop)


def _even_ends(costs: Sequence[float], parts: int) -> list[int]:
    """Where each of `parts` consecutive runs of `costs` ends, none empty, each end
    the one whose total so far is nearest its share (k / parts of the whole; of two as
    near, the later)."""
    totals = list(itertools.accumulate(costs))
    ends: list[int] = []
    for k in range(1, parts):
        share = totals[-1] * k / parts
        first = ends[-1] + 1 if ends else 1  # at least one record per part
        last = len(costs) - (parts - k)  # and one left for each part after this
        ends.append(
            min(range(first, last + 1), key=lambda end: (abs(totals[end - 1] - share), -end))
        )
    return [*ends, len(costs)]


class _PartThread:
    """An OS thread that computes `in_parts`' parts on one torch thread, started once
    and kept for the process's life (a daemon: it never holds the process open).

    Against a new thread for each batch, as before: 1.026x (MiniLM in bf16 on AMX,
    batches of 16 in halves, 10 alternating rounds, 0.86-1.05), and no thread to start
    and tear down 30 times a second. An OS thread even in a gevent worker, whose
    monkey-patched threads are greenlets that would take turns on the caller's thread:
    the caller (the batcher's forward thread) blocks, as it may."""

    def __init__(self) -> None:
        lock = native.os_thread("allocate_lock")
        self._given, self._done = lock(), lock()  # each held while nothing is to do
        self._given.acquire()
        self._done.acquire()
        self._work: tuple[Callable, tuple] | None = None
        self._outcome: tuple[bool, Any] = (True, None)
        native.os_thread("start_new_thread")(self._serve, ())

    def _serve(self) -> None:
        import torch

        # torch keeps a thread count per thread, set on its first parallel op from the
        # last count set anywhere: let that happen first, then take one for good.
        torch.get_num_threads()
        torch.set_num_threads(1)
        while True:
            self._given.acquire()
            work, self._work = self._work, None
            self._outcome = native.capture(*work)
            self._done.release()

    def start(self, fn: Callable[..., R], *args: Any) -> Callable[[], tuple[bool, Any]]:
        """Start `fn(*args)` on this thread; return a function that waits for it and
        gives (True, its result) or (False, its exception)."""
        self._work = (fn, args)
        self._given.release()

        def join() -> tuple[bool, Any]:
            self._done.acquire()
            outcome, self._outcome = self._outcome, (True, None)
            return outcome

        return join


@dataclass
class _Parts:
    """This process's part threads, and the lock that gives them to one caller at a
    time."""

    threads: list[_PartThread] = field(default_factory=list)
    busy: Any = field(default_factory=lambda: native.os_thread("allocate_lock")())

    @contextlib.contextmanager
    def taken(self, n: int) -> Iterator[list[_PartThread] | None]:
        """`n` part threads, the caller's until it leaves; None if another caller holds
        them (it computes its batch in one call instead of waiting)."""
        if not self.busy.acquire(False):
            yield None
            return
        try:
            while len(self.threads) < n:
                self.threads.append(_PartThread())
            yield self.threads[:n]
        finally:
            self.busy.release()


_PARTS = _Parts()


def _forget_parts() -> None:
    """In a forked child (gunicorn's workers), which has none of its parent's threads."""
    global _PARTS
    _PARTS = _Parts()


os.register_at_fork(after_in_child=_forget_parts)
