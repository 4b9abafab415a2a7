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
would oversubscribe the cores and rebuild oneDNN's kernels.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Iterator

MAX_SLOTS = 1024  # workers at once, counting replacements forked before the old is reaped


class CoreShare:
    """`cores` CPU cores shared by the workers in `slots` (one byte each: computing or not)."""

    def __init__(self, cores: int, slots: int = MAX_SLOTS):
        self.cores = max(1, cores)
        self.slots = max(1, slots)
        self.slot = 0  # this process's, set by `attach` in each worker
        self._busy = mmap.mmap(-1, self.slots)  # anonymous and shared: survives fork

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
        """This worker's share of the cores, given who computes now (itself included)."""
        return max(1, self.cores // max(1, self.busy()))

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
