"""Where a worker's model runs: device, precision, threads and the CPU cores it shares.

`serve` resolves these once per worker and hands them to the plug-in's `load` as a
`Runtime`. The platform runs every `predict` and `warm_up` inside `computing()`, which
tells the other workers this one computes and takes this worker's share of the cores
(all of them when it computes alone; `cores`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cores import CoreShare
from .errors import UserError

log = logging.getLogger("serve")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("MODEL_SERVER_DEVICE=cuda but no GPU is visible")
    return requested


CPUINFO = Path("/proc/cpuinfo")


def cpu_has_bf16() -> bool:
    """Native bf16 matrix instructions (AVX512-BF16 or AMX); elsewhere bf16 is slower.
    The one CPU check behind both `auto` precisions: serving's bf16 and training's
    bf16-mixed (`training.resolve_precision`)."""
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(requested: str, device: str) -> str:
    """`auto`: bf16 where the hardware computes in bf16, fp16 on older GPUs, else fp32.
    int8 is opt-in and CPU-only, fp16 GPU-only. A plug-in may compute in another
    precision than this (and says so in its `model loaded` line)."""
    import torch

    if requested == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if requested == "int8" and device != "cpu":
        raise UserError("MODEL_SERVER_PRECISION=int8 is CPU-only; use bf16 or fp16 on a GPU")
    if requested == "fp16" and device != "cuda":
        raise UserError("MODEL_SERVER_PRECISION=fp16 needs a GPU; use bf16 or int8 on CPU")
    return requested


@dataclass
class Runtime:
    """What a plug-in's `load` gets: where and how to run, resolved for this worker."""

    device: str = "cpu"  # "cpu" or "cuda"
    precision: str = "fp32"  # "fp32", "bf16", "fp16" or "int8" (MODEL_SERVER_PRECISION)
    max_batch_size: int = 32  # records per `predict` call at most
    share: CoreShare | None = None  # CPU cores shared with the other workers, if any

    @classmethod
    def resolve(
        cls,
        precision: str = "auto",
        device: str = "auto",
        threads: int = 0,
        max_batch_size: int = 32,
        share: CoreShare | None = None,
    ) -> Runtime:
        import torch

        if threads:
            torch.set_num_threads(threads)
        resolved = resolve_device(device)
        return cls(resolved, resolve_precision(precision, resolved), max_batch_size, share)

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
