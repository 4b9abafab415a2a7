"""glibc's malloc set to keep the memory a batch frees for the next batch.

By default glibc gives a large freed block back to the kernel (`munmap`, or a trim of
the heap's top), and the next batch's tensors of the same size come back as fresh pages
that the kernel must fault in and zero. A model server allocates and frees the same
sizes batch after batch. On MiniLM in bf16 (batches of 16 texts, 2 cores with AMX) that
was 3,200-3,800 page faults per batch and 5-7% of the CPU time spent in the kernel.
With the settings below it was 11-25 faults per batch and almost no kernel time:
1.03-1.13x the texts per second in process; served, 1.03x at 16 concurrent requests
(within the benchmark's noise) and no change one request at a time (docs/results.md,
"AMX").

The cost is memory: a process keeps its peak heap rather than shrinking after a large
batch (26-35 MB more resident there, 22-36 MB more at the peak of serverless's largest
request). PyTorch's CUDA allocator makes the same trade for GPU memory. Serving sets it
for bf16 on a CPU only (`for_serving`). Set `GLIBC_TUNABLES` or `MALLOC_*` yourself to
keep glibc's defaults or choose other values: settings of your own are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

from . import logs

log = logging.getLogger("serve")

# mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap, not from mmap: glibc's largest allowed
# value on 64-bit (half its 64 MB arena heap). Larger blocks are still mapped.
MMAP_THRESHOLD = 32 << 20
# Free memory at the heap's top is handed back only beyond this (1 GiB).
TRIM_THRESHOLD = 1 << 30


def user_set() -> bool:
    """Whether the environment already tunes malloc (glibc reads it at start)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "glibc.malloc." in tunables or any(k.startswith("MALLOC_") for k in os.environ)


def for_serving(device: str, precision: str) -> bool:
    """Keep freed memory where a worker computes in bf16 on a CPU, where it was measured
    to pay; elsewhere leave glibc's defaults. fp32 on a CPU gained nothing (in process
    1.00x) and its peak after serverless's largest request rose from 983 to 1,240 MB
    (docs/results.md, "AMX"). True if this process now keeps freed memory."""
    if device == "cpu" and precision == "bf16":
        return keep_freed_memory()
    return False


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory (`MMAP_THRESHOLD`, `TRIM_THRESHOLD`),
    once per process. True if this process's malloc now keeps it. False where the
    environment tunes malloc itself (`user_set`), or where the C library has no
    `mallopt` (musl, macOS). Process-wide: call it where a process starts serving."""
    if user_set():
        log.info("malloc settings from the environment kept")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not all(mallopt(param, value) for param, value in settings):
        return False
    log.info(
        "malloc keeps freed memory %s",
        logs.kv(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD),
    )
    return True
