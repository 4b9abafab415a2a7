"""LogLines' throughput clock, on a real Trainer: it must count what a training step
costs (fetching and collating the batch included) and nothing of validation."""

import time

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from sagemaker_platform.callbacks import LogLines

FETCH_S = 0.03  # per training batch, spent in collate (as tokenizing is)
VALIDATE_S = 1.0  # per validation batch: one counted would be far past the bound below
BATCHES, BATCH = 8, 4


def slow_collate(items):
    time.sleep(FETCH_S)
    return {"x": torch.stack([x for x, _ in items]), "labels": torch.tensor([y for _, y in items])}


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.layer(batch["x"]), batch["labels"])

    def validation_step(self, batch, batch_idx):
        time.sleep(VALIDATE_S)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_clock_counts_batch_fetching_and_stops_for_validation(tmp_path):
    rows = [(torch.randn(3), i % 2) for i in range(BATCHES * BATCH)]
    train = DataLoader(rows, batch_size=BATCH, collate_fn=slow_collate)
    val = DataLoader(rows[:BATCH], batch_size=BATCH, collate_fn=slow_collate)
    clock = LogLines()
    trainer = L.Trainer(
        max_epochs=2,
        val_check_interval=0.5,  # validation twice per epoch, once in the middle
        callbacks=[clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), train, val)
    steps = 2 * BATCHES
    assert clock.train_samples == steps * BATCH
    # Every batch's collate is inside the clock, but for the one fetched between a
    # mid-epoch validation and the next batch's start (one per epoch here) ...
    assert clock.train_seconds >= (steps - 2) * FETCH_S
    # ... and none of the four validation runs (4 s in all) is; the rest of the bound is
    # slack for the steps themselves on a busy machine.
    assert clock.train_seconds < steps * FETCH_S + VALIDATE_S
    assert clock.samples_per_second == clock.train_samples / clock.train_seconds
    # Sleeping in collate or validation is no CPU work: the CPU clock runs, but slower.
    assert 0 < clock.train_cpu_seconds < clock.train_seconds
