"""Lightning around the plain network: the module and the data module."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from sagemaker_platform import loaders

from . import optim
from .text import TextEncoder


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

    def _order(self, texts: Sequence[str], shuffle: bool) -> Sampler[int] | None:
        if self.group_by_length:
            lengths = [len(t) for t in texts]
            return LengthGroupedOrder(lengths, self.batch_size, seed=self.seed, shuffle=shuffle)
        return None  # the platform's default: a seeded shuffle per epoch, or in order

    def train_dataloader(self) -> DataLoader:
        # Resumable mid-epoch: a seeded order per epoch and a saved position.
        texts, labels = self.splits.train_texts, self.splits.train_labels
        return loaders.train_loader(
            _Texts(texts, labels),
            self.batch_size,
            self.collate,
            sampler=self._order(texts, shuffle=True),
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        texts, labels = self.splits.val_texts, self.splits.val_labels
        return loaders.eval_loader(
            _Texts(texts, labels),
            self.batch_size,
            self.collate,
            sampler=self._order(texts, shuffle=False),
            num_workers=self.num_workers,
        )
