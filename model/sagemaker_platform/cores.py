"""CPU cores shared between the gunicorn workers of one server.

On a CPU host every worker holds its own model. Under load they all compute at once,
each on its share of the cores: one torch thread per core when every worker is busy.
That beats one worker with every thread: the small matrix products of a text encoder
scale poorly across threads, and a thread that loses its core (to nginx, the event loop
or a neighbour on the host) stalls only its own worker, not a whole OpenMP team. A lone
request should still get every core, so the workers publish whether each is computing
in a few bytes of shared memory that the gunicorn master maps before it forks them.

A worker about to run a batch takes `cores // busy` threads (`busy` counting itself),
and while it computes it drops to its share as soon as another worker starts (checked
before each encoder layer). It never grows mid-batch: going up and down between layers
would oversubscribe the cores and rebuild oneDNN's kernels. Nor does it grow in the
short gaps of a steady load (`HOLD_S`): once it has seen another worker computing, it
keeps to its share until none has been seen for that long.
"""

from __future__ import annotations

import contextlib
import mmap
import time
from collections.abc import Callable, Iterator

MAX_SLOTS = 1024  # workers at once, counting replacements forked before the old is reaped

# How long a worker that saw others computing keeps to the share it had then. Under a
# steady load the workers' batches overlap almost all the time; between two of one
# worker's batches (its answers going out, its wait for the clients to come back) the
# other would otherwise start its next batch on every core and drop back a layer later,
# the cores oversubscribed until it does. Two workers on an AMX CPU at concurrency 16
# served 1.11x as many requests with this hold (ab_serve.py, 12 alternating rounds,
# docs/results.md). A lone request (concurrency 1) never sees another worker computing,
# so it still gets every core.
HOLD_S = 0.05


class CoreShare:
    """`cores` CPU cores shared by the workers in `slots` (one byte each: computing or not)."""

    def __init__(
        self,
        cores: int,
        slots: int = MAX_SLOTS,
        hold_s: float = HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cores = max(1, cores)
        self.slots = max(1, slots)
        self.slot = 0  # this process's, set by `attach` in each worker
        self._busy = mmap.mmap(-1, self.slots)  # anonymous and shared: survives fork
        self.hold_s, self._clock = hold_s, clock
        self._seen, self._seen_at = 1, float("-inf")  # this worker's last sight of others

    def attach(self, slot: int) -> None:
        """In a freshly forked worker: its slot, cleared (a killed predecessor may have
        died computing)."""
        self.release(slot)
        self.slot = slot

    def release(self, slot: int) -> None:
        """Mark `slot` idle: in a new worker, and in the master for one that exited."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} outside 0..{self.slots - 1}")
        self._busy[slot] = 0

    def busy(self) -> int:
        """Workers computing now."""
        return self._busy[:].count(1)

    def threads(self) -> int:
        """This worker's share of the cores, given who computes now (itself included), or
        who computed the last time this worker saw others do so, within `hold_s`."""
        busy, now = self.busy(), self._clock()
        if busy > 1:
            self._seen, self._seen_at = busy, now
        elif now - self._seen_at < self.hold_s:
            busy = self._seen
        return max(1, self.cores // max(1, busy))

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        self._busy[self.slot] = 1
        try:
            yield
        finally:
            self._busy[self.slot] = 0


_installed: CoreShare | None = None


def install(share: CoreShare | None) -> None:
    """Called in each worker after fork (gunicorn_conf.post_fork)."""
    global _installed
    _installed = share


def installed() -> CoreShare | None:
    """This worker's share, or None: a single worker, a GPU, fixed threads, or no server."""
    return _installed
