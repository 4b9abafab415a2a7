"""FiniteMetrics on a real Trainer: a run whose loss or monitored metric is not finite
fails with a one-line UserError; a finite run, or one fp16-like step that overflowed
while the run went on, does not."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from sagemaker_platform.callbacks import FiniteMetrics
from sagemaker_platform.errors import UserError

ROWS = [(torch.randn(3), i % 2) for i in range(16)]


class Tiny(L.LightningModule):
    """A linear classifier whose training loss is `bad` at the steps in `bad_steps`, and
    whose logged val_metric is `val`."""

    def __init__(self, bad_steps=(), bad=math.nan, val=0.5):
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.bad_steps, self.bad, self.val = set(bad_steps), bad, val

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.layer(x), y)
        if self.global_step in self.bad_steps:
            loss = loss * 0 + self.bad  # a loss the optimiser still steps on
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_metric", torch.tensor(self.val), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # weights stay finite


def fit(tmp_path, module, monitor="val_metric", validate=True, epochs=2):
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[FiniteMetrics(monitor)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(ROWS, batch_size=4)
    trainer.fit(module, loader, loader if validate else None)
    return trainer


def test_a_finite_run_trains_to_the_end(tmp_path):
    assert fit(tmp_path, Tiny()).current_epoch == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_monitored_metric_not_finite_fails_in_one_line(tmp_path, value):
    with pytest.raises(UserError) as err:
        fit(tmp_path, Tiny(val=value))
    message = str(err.value)
    assert message.startswith(f"training diverged: val_metric is {value} after epoch 1")
    assert "\n" not in message


def test_a_loss_that_ends_an_epoch_not_finite_fails_without_validation(tmp_path):
    """No monitor (no validation): the loss is the only figure, and is checked."""
    with pytest.raises(UserError, match="the training loss is not a finite number at the end "):
        fit(tmp_path, Tiny(bad_steps=range(3, 100)), monitor=None, validate=False)


def test_one_step_that_overflowed_mid_epoch_is_no_failure(tmp_path):
    """The gradient scaler of fp16 training skips such a step, and the run goes on."""
    trainer = fit(tmp_path, Tiny(bad_steps={1}, bad=math.inf), monitor=None, validate=False)
    assert trainer.current_epoch == 2
