"""The optimiser and its learning-rate schedule, in plain torch (no Lightning).

The LightningModule's `configure_optimizers` and the training benchmark's bare PyTorch
loop both build them here, so the two optimise the same way by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# Parameters that are not decayed: biases and normalisation weights.
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
HEAD_PREFIX = "head."


def param_groups(
    network: nn.Module, learning_rate: float, head_learning_rate: float, weight_decay: float
) -> list[dict[str, Any]]:
    """AdamW groups: the fresh head learns faster than the pretrained backbone, and
    biases and norms are not decayed."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.startswith(HEAD_PREFIX)
        decays = not any(name.endswith(n) for n in NO_DECAY)
        groups.setdefault((is_head, decays), []).append(param)
    return [
        {
            "params": params,
            "lr": head_learning_rate if is_head else learning_rate,
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_head, decays), params in groups.items()
    ]


def warmup_linear_decay(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """The learning-rate factor per optimiser step: linear warm-up, then linear decay to
    zero at `total_steps`."""
    total = max(1, int(total_steps))
    warmup = int(total * warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return schedule


def build(
    network: nn.Module,
    *,
    learning_rate: float,
    head_learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    total_steps: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over `param_groups` and a per-step `warmup_linear_decay` scheduler."""
    optimizer = torch.optim.AdamW(
        param_groups(network, learning_rate, head_learning_rate, weight_decay)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_linear_decay(total_steps, warmup_ratio)
    )
    return optimizer, scheduler
