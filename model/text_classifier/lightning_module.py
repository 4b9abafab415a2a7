"""Lightning around the plain network: the module, the data module and log callbacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from . import logs, optim
from .text import TextEncoder

log = logging.getLogger("train")


class ClassifierModule(L.LightningModule):
    """Fine-tunes a `TextClassifier`; one `model_step` shared by train and validation."""

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        learning_rate: float,
        head_learning_rate: float,
        weight_decay: float,
        warmup_ratio: float,
        class_weights: list[float] | None = None,
    ):
        super().__init__()
        # Plain values only, so the checkpoint loads with weights_only=True.
        self.save_hyperparameters(ignore=["network"])
        self.network = network
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.loss_fn = nn.CrossEntropyLoss(weight=weight)
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network(input_ids, attention_mask)

    def model_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        return self.loss_fn(logits.float(), batch["labels"]), logits

    def training_step(self, batch, batch_idx):
        loss, _ = self.model_step(batch)
        # sync_dist: the epoch's train_loss over every rank's batches (a no-op on one process)
        self.log(
            "train_loss",
            loss,
            on_step=True,
            on_epoch=True,
            batch_size=len(batch["labels"]),
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logits = self.model_step(batch)
        preds = logits.argmax(-1)
        n = len(batch["labels"])
        self.val_accuracy(preds, batch["labels"])
        self.val_f1(preds, batch["labels"])
        self.log("val_loss", loss, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("val_accuracy", self.val_accuracy, on_epoch=True, batch_size=n)
        self.log("val_f1", self.val_f1, on_epoch=True, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer, scheduler = optim.build(
            self.network,
            learning_rate=hp.learning_rate,
            head_learning_rate=hp.head_learning_rate,
            weight_decay=hp.weight_decay,
            warmup_ratio=hp.warmup_ratio,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class _Texts(Dataset):
    def __init__(self, texts: Sequence[str], labels: np.ndarray):
        self.texts, self.labels = texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], int(self.labels[i])


class Collate:
    """Tokenize a list of (text, label) pairs with the shared preprocessing path."""

    def __init__(self, encoder: TextEncoder):
        self.encoder = encoder

    def __call__(self, items: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        texts, labels = zip(*items, strict=True)
        batch = self.encoder(texts)
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


class LengthGroupedOrder(Sampler[int]):
    """Row indices in an order whose consecutive runs of `batch_size` hold texts of
    similar length: fed to a plain DataLoader, every batch pads little.

    A batch is padded to its longest text, so with random batches of texts from one line
    to a page most of the compute goes to padding (about 3.8 times the real tokens at
    max_length 256 and batch 16 on the fortunes benchmark). Here a seeded random order is
    cut into chunks of `chunk_batches` batches, each chunk sorted by length and cut into
    batches, and the full batches shuffled (a short one stays last, so the DataLoader's
    cuts fall on the groups): the waste falls to about 1.6 times while every epoch still
    draws different batches. Lengths are characters, a free proxy for tokens.

    The order depends on the seed and the epoch only (Lightning calls `set_epoch`), so a
    resumed epoch replays the interrupted one's batches; on several processes Lightning
    wraps this sampler and gives each rank a strided share of the same order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        chunk_batches: int = 8,
        shuffle: bool = True,
    ):
        self.lengths, self.batch_size = lengths, batch_size
        self.chunk = max(1, chunk_batches) * batch_size
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
        batches = []
        for start in range(0, n, self.chunk):
            chunk = sorted(order[start : start + self.chunk], key=self.lengths.__getitem__)
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        if self.shuffle:
            full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        return full + short

    def __iter__(self) -> Iterator[int]:
        return iter([i for batch in self.batches() for i in batch])

    def __len__(self) -> int:
        return len(self.lengths)


class TextDataModule(L.LightningDataModule):
    def __init__(
        self,
        splits,
        encoder: TextEncoder,
        batch_size: int,
        num_workers: int,
        group_by_length: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.splits = splits
        self.collate = Collate(encoder)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.group_by_length = group_by_length

    def _order(self, texts: Sequence[str], shuffle: bool) -> Sampler[int]:
        from .resume import EpochShuffle

        if self.group_by_length:
            lengths = [len(t) for t in texts]
            return LengthGroupedOrder(lengths, self.batch_size, seed=self.seed, shuffle=shuffle)
        return EpochShuffle(len(texts), self.seed) if shuffle else SequentialSampler(texts)

    def _common(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "collate_fn": self.collate,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
        }

    def train_dataloader(self) -> DataLoader:
        # Resumable mid-epoch: a seeded order per epoch and a saved position (resume.py).
        from .resume import ResumableLoader

        texts, labels = self.splits.train_texts, self.splits.train_labels
        order = self._order(texts, shuffle=True)
        return ResumableLoader(_Texts(texts, labels), sampler=order, **self._common())

    def val_dataloader(self) -> DataLoader:
        texts, labels = self.splits.val_texts, self.splits.val_labels
        return DataLoader(
            _Texts(texts, labels), sampler=self._order(texts, False), **self._common()
        )


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
        self.every_n_steps = every_n_steps
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
            self.train_samples += len(batch["labels"])
        self._since = now
        step = trainer.global_step
        if (
            self.every_n_steps
            and trainer.is_global_zero
            and (batch_idx + 1) % self.every_n_steps == 0
        ):
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
        if not trainer.is_global_zero:
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.endswith(("_epoch",)) or k.startswith("val_")
        }
        line = {"epoch": trainer.current_epoch + 1}
        if "train_loss_epoch" in metrics:
            line["train_loss"] = metrics["train_loss_epoch"]
        for name in ("val_loss", "val_accuracy", "val_f1"):
            if name in metrics:
                line[name] = metrics[name]
        line["train_samples_per_sec"] = round(self.samples_per_second, 2)
        log.info(logs.kv(**line))
