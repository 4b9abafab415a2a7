"""The memory this container may use: what the budgets that keep a worker from being
killed for memory are fractions of (a multi-model endpoint's models, the requests a
worker holds at once, a gzipped table's expansion)."""

from __future__ import annotations

import contextlib
from pathlib import Path

_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def container_memory_mb() -> float:
    """The memory this container may use: its cgroup's limit where there is one, else
    the machine's (MemTotal)."""
    found = []
    for path in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text != "max":
                found.append(int(text) / 2**20)
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path("/proc/meminfo").read_text().splitlines()
        total = next(line for line in lines if line.startswith("MemTotal:"))
        found.append(int(total.split()[1]) / 1024)
    return min(found) if found else 0.0
