"""Training's numeric precision: what `precision=auto` chooses, and how the Trainer runs it.

`auto` is bf16-mixed where the hardware computes in bf16: on a GPU that has bf16, and,
for a plug-in that sets `Plugin.bf16_on_cpu`, on a CPU whose bf16 units (AVX512-BF16 or
AMX) compute a matrix multiply faster than fp32 (`cpu_bf16.cpu_bf16_pays`, a probe
measured once: the one CPU check, which serving's `auto` uses too). There
the MiniLM classifier trained 1.3x as fast per CPU second as in fp32 with the same
held-out macro-F1 (`benchmarks/bench_train.py --compare-precision`); the tabular MLP
trained slower in bf16 and the image CNN no faster, so they keep fp32 on the CPU.
Elsewhere `auto` is 32-true.

bf16-mixed trains under autocast and validates in fp32: the weights are fp32 either
way, and validating them in fp32 keeps the epoch figures that pick the best checkpoint
equal to the evaluation of that checkpoint in metrics.json (and to what an fp32 endpoint
answers), where bf16 would flip near-tie answers between the two.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from . import cpu_bf16, logs
from .errors import UserError

log = logging.getLogger("train")


def resolve(requested: str, bf16_on_cpu: bool = False) -> str:
    """Lightning's precision for the `precision` hyperparameter, on the device the Trainer
    will pick (a GPU when one is visible, else the CPU). Asked for on a CPU where bf16
    does not pay, bf16 still trains (slower than 32), with a warning; 16-mixed
    on a CPU is refused (Lightning would silently run bf16-mixed instead)."""
    import torch

    on_gpu = torch.cuda.is_available()
    if requested == "auto":
        if on_gpu:
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
        return "bf16-mixed" if bf16_on_cpu and cpu_bf16.cpu_bf16_pays() else "32-true"
    if requested == "32":
        return "32-true"
    if on_gpu:
        return requested
    if requested == "16-mixed":
        raise UserError(
            "precision=16-mixed needs a GPU (fp16 autocast); on a CPU use bf16-mixed or 32"
        )
    if requested.startswith("bf16") and not cpu_bf16.cpu_bf16_pays():
        log.warning(
            "precision %s",
            logs.kv(
                precision=requested,
                reason="this CPU computes bf16 no faster than fp32 (no bf16 units, or the "
                "cpu bf16 probe measured them slower): slower than precision=32",
            ),
        )
    return requested


def trainer_kwargs(precision: str) -> dict[str, Any]:
    """`L.Trainer`'s precision argument: the string, or for bf16-mixed a plug-in that
    leaves validation out of autocast (the Trainer's `precision` still says bf16-mixed)."""
    if precision != "bf16-mixed":
        return {"precision": precision}
    import torch
    from lightning.pytorch.plugins.precision import MixedPrecision

    class TrainInBf16(MixedPrecision):
        """Lightning's bf16 autocast for the training step only."""

        def val_step_context(self):
            return contextlib.nullcontext()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"plugins": [TrainInBf16("bf16-mixed", device)]}
