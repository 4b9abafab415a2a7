"""Whether this CPU computes bf16 matrix multiplies fast enough to choose them: the probe
behind both `auto` precisions, serving's bf16 (`runtime.resolve_precision`) and
training's bf16-mixed (`precision.resolve`).

The flags alone (AVX512-BF16, AMX in /proc/cpuinfo) do not decide: where a kernel or
hypervisor leaves AMX off, AVX512-BF16's instructions ran at 0.6x fp32. So it measures,
once per process (one server's workers share one measurement), and logs one line:
`cpu bf16 probe speedup=... bf16_pays=yes|no`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from . import logs

CPUINFO = Path("/proc/cpuinfo")


def _cpu_flags() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


def _bf16_flags() -> bool:
    """Native bf16 matrix instructions in /proc/cpuinfo's flags (AVX512-BF16 or AMX)."""
    flags = _cpu_flags()
    return " avx512_bf16" in flags or " amx_bf16" in flags


# `auto` computes in bf16 on a CPU only where the probe (`cpu_bf16_speedup`) measures its
# bf16 matrix multiplies at least this many times as fast as fp32's. bf16's gain over a
# whole network is smaller than over its matmuls (the rest stays fp32, and near ties are
# recomputed in fp32). Measured (`_time_bf16`): AMX 4.0-5.2x, even with four probes at
# once on two cores; the same Xeon with oneDNN capped below AMX (AVX512-BF16
# instructions only, as on a kernel or hypervisor that leaves AMX off) 0.59-0.62x, where
# the MiniLM default in bf16 ran at 0.67x fp32's speed (docs/results.md, "Choosing bf16
# by measuring").
BF16_MIN_SPEEDUP = 1.2


# Set by `serving` for its workers: a file in the server's own folder where the first
# worker to probe writes what it measured and the others read it (`cpu_bf16_speedup`).
PROBE_FILE_ENV = "SERVE_CPU_BF16_PROBE"


@functools.cache
def cpu_bf16_speedup() -> float:
    """How many times as fast as fp32 this CPU computes a bf16 matrix multiply through
    torch (oneDNN), on one core: measured once per process (about 15 ms, best of 5
    alternating calls) and logged in one `cpu bf16 probe` line; 0.0 without the flags
    (`_bf16_flags`) or where oneDNN has no bf16. AVX512-BF16's instructions pay on some
    CPUs and not on others (`BF16_MIN_SPEEDUP`), so the flags alone do not decide.

    A server's workers share one measurement (`PROBE_FILE_ENV`): the first to probe
    measures while the others wait on the file's lock, then they read its figure. So
    every worker, and every replacement of one, computes in the same precision, even
    on a CPU whose figure sits near the threshold, and the one measurement runs while
    no other probe competes for the cores."""
    shared = os.environ.get(PROBE_FILE_ENV)
    if not shared:
        return _probe()
    import fcntl

    try:
        fd = os.open(shared, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "cpu bf16 probe not shared %s", logs.kv(file=shared, error=exc)
        )
        return _probe()
    with os.fdopen(fd, "r+", encoding="ascii") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        known = _figure(f.read(64))
        if known is not None:
            _log_probe(known, {"shared": "yes"})
            return known
        speedup = _probe()
        f.seek(0)
        f.truncate()
        f.write(repr(speedup))
        return speedup


def _figure(text: str) -> float | None:
    """A figure another worker wrote, or None for anything else (empty: none yet)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value < 1e6 else None  # rejects nan and inf too


def _probe() -> float:
    from . import bf16

    if not _bf16_flags():
        found = {"reason": "no AVX512-BF16 or AMX in the CPU flags"}
    elif not bf16.onednn_bf16():
        found = {"reason": "oneDNN computes no bf16 on this CPU"}
    else:
        found = _time_bf16()
    speedup = found.pop("speedup", 0.0)
    _log_probe(speedup, found)
    return speedup


def _log_probe(speedup: float, found: dict[str, Any]) -> None:
    logging.getLogger(__name__).info(
        "cpu bf16 probe %s",
        logs.kv(
            speedup=f"{speedup:.2f}",
            bf16_pays="yes" if speedup >= BF16_MIN_SPEEDUP else "no",
            **found,
        ),
    )


def _time_bf16() -> dict[str, Any]:
    """`cpu_bf16_speedup`'s measurement: a [256 x 384] x [384 x 1536] matrix multiply
    (a MiniLM feed-forward layer over a few texts) in fp32 and in bf16, on one thread:
    the core's own speed in each. Serving's workers start together and probe at once:
    on two threads each, two probes sharing two cores measured AMX at 1.13x, below the
    threshold; on one thread each, 4.8-5.1x (docs/results.md)."""
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(256, 384, generator=g), torch.randn(1536, 384, generator=g)
    pairs = {"fp32": (x, w), "bf16": (x.bfloat16(), w.bfloat16())}
    best = dict.fromkeys(pairs, float("inf"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for a, b in pairs.values():  # the first call builds oneDNN's kernel: not timed
                F.linear(a, b)
            for _ in range(5):
                for name, (a, b) in pairs.items():
                    started = time.perf_counter()
                    F.linear(a, b)
                    best[name] = min(best[name], time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    flops = 2 * x.shape[0] * x.shape[1] * w.shape[0]
    return {
        "speedup": best["fp32"] / best["bf16"],
        "fp32_gflops": round(flops / best["fp32"] / 1e9),
        "bf16_gflops": round(flops / best["bf16"] / 1e9),
    }


def cpu_bf16_pays() -> bool:
    """Whether this CPU computes bf16 matrix multiplies fast enough to choose them
    (`BF16_MIN_SPEEDUP`). The one CPU check behind both `auto` precisions: serving's
    bf16 and training's bf16-mixed (`precision.resolve`)."""
    return cpu_bf16_speedup() >= BF16_MIN_SPEEDUP
