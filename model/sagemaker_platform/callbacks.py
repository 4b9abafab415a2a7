"""Log lines for CloudWatch and a throughput clock, for every plug-in's training run."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from . import logs
from .errors import UserError

log = logging.getLogger("train")


def batch_size(batch: Any) -> int:
    """Rows in a batch: a dict of tensors, a tuple or list whose first item is one, or a
    tensor."""
    if isinstance(batch, Mapping):
        batch = next(iter(batch.values()), [])
    elif isinstance(batch, (tuple, list)) and batch and not isinstance(batch[0], (int, float)):
        batch = batch[0]
    return len(batch) if hasattr(batch, "__len__") else 0


def epoch_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The epoch's figures by the names the LightningModule logged: `train_loss` (from
    Lightning's `train_loss_epoch`), and every `val_*` metric; finite scalars only."""
    out = {}
    for name, value in sorted(metrics.items()):
        if name.endswith("_step") or not (name.startswith("val_") or name.endswith("_epoch")):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[name.removesuffix("_epoch")] = number
    return out


class LogLines(L.Callback):
    """Progress and metrics as one `name=value` line per event, for CloudWatch.

    Also measures training throughput, which the training benchmark compares to a bare
    PyTorch loop. The clock runs from the start of each training epoch through its last
    batch, so it counts everything a training step costs: fetching and tokenizing the
    batch, forward, backward, optimizer and scheduler steps, logging, other callbacks.
    It stops while validation runs (and the checkpointing that follows it) and between
    epochs, and restarts at the next training batch (so a validation in the middle of
    an epoch also leaves out the one batch fetch Lightning makes before that batch).
    The process's CPU time is kept over the same spans: with one torch thread it is
    close to what the steps would take on a machine of their own, which the benchmark
    uses to compare on a shared one.
    """

    def __init__(self, every_n_steps: int = 0):
        self.every_n_steps = every_n_steps  # 0: five lines per epoch
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self.train_samples = 0
        # (wall, cpu) when the clock last restarted; None while it is stopped
        self._since: tuple[float, float] | None = None

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def on_train_epoch_start(self, trainer, pl_module):
        # Before the epoch's DataLoader iterator exists: its creation and the first
        # fetch are part of training, as they are for a bare loop.
        self._since = self._now()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._since is None:  # after a validation run in the middle of an epoch
            self._since = self._now()

    def on_validation_start(self, trainer, pl_module):
        self._since = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx + 1 == trainer.num_training_batches and pl_module.device.type == "cuda":
            # The epoch's steps finished, not merely queued, when its clock stops.
            torch.cuda.synchronize(pl_module.device)
        now = self._now()
        if self._since is not None:
            self.train_seconds += now[0] - self._since[0]
            self.train_cpu_seconds += now[1] - self._since[1]
            self.train_samples += batch_size(batch)
        self._since = now
        step = trainer.global_step
        every = self.every_n_steps or max(1, trainer.num_training_batches // 5)
        if trainer.is_global_zero and (batch_idx + 1) % every == 0:
            loss = outputs["loss"].item() if isinstance(outputs, dict) else float(outputs)
            log.info(
                logs.kv(
                    epoch=trainer.current_epoch + 1,
                    step=step,
                    batch=f"{batch_idx + 1}/{trainer.num_training_batches}",
                    loss=loss,
                    lr=trainer.optimizers[0].param_groups[0]["lr"],
                )
            )

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0

    def on_train_epoch_end(self, trainer, pl_module):
        # On every rank: reading callback_metrics computes the epoch's metrics, which
        # for those logged with sync_dist is a collective. Read on rank 0 alone, it
        # would pair with the other ranks' next collective (another callback's) instead.
        metrics = epoch_metrics(trainer.callback_metrics)
        if not trainer.is_global_zero:
            return
        line = {"epoch": trainer.current_epoch + 1, **metrics}
        line["train_samples_per_sec"] = round(self.samples_per_second, 2)
        log.info(logs.kv(**line))


class FiniteMetrics(L.Callback):
    """Fails the job, in one line, once the training loss or the monitored validation
    metric is not a finite number: NaN weights, or a metric that overflowed, would
    otherwise train on (early stopping merely stops) and exit 0 with a useless model.

    The loss checked is each epoch's last step's, kept on the device and read once per
    epoch (no sync per step): weights gone NaN give NaN at every step after, while one
    step that overflows in fp16 (skipped by the gradient scaler) is not a failure. Both
    checks are reduced over the ranks, so that every process of a multi-host job fails
    at the same point instead of leaving the others waiting."""

    def __init__(self, monitor: str | None):
        self.monitor = monitor
        self._last_loss: torch.Tensor | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._last_loss = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            self._last_loss = loss.detach()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or self.monitor is None:
            return
        # Every rank takes part in the reduction, whatever it holds: a host whose shard
        # gave it no validation batch has no value, and skipping the collective there
        # would pair the others' with the next one (gloo: "collective mismatch").
        value = trainer.callback_metrics.get(self.monitor)
        number = float(value) if value is not None else 0.0
        if trainer.strategy.reduce_boolean_decision(not math.isfinite(number), all=False):
            raise UserError(
                f"training diverged: {self.monitor} is {number} after epoch "
                f"{trainer.current_epoch + 1}, not a finite number; look for extreme values "
                "in the data (labels especially), or lower learning_rate"
            )

    def on_train_epoch_end(self, trainer, pl_module):
        loss = self._last_loss
        bad = loss is not None and not bool(torch.isfinite(loss).all())
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            raise UserError(
                "training diverged: the training loss is not a finite number at the end of "
                f"epoch {trainer.current_epoch + 1}; look for extreme values in the data, or "
                "lower learning_rate"
            )
