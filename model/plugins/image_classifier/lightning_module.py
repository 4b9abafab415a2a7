"""Lightning around the plain network: the module (loss, metrics, optimiser), the Dataset
that opens each image file when a step needs it, and the DataModule (the platform's
resumable loaders)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from sagemaker_platform import loaders
from sagemaker_platform.errors import UserError

from . import image
from .data import ImageRows, Images


class ImageFiles(Dataset):
    """(pixels, class index) per file, decoded and preprocessed as serving does: in
    FastFile mode the file's bytes come from S3 now. A file that is no usable image
    fails the job naming it."""

    def __init__(self, images: Images, size: int):
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        try:
            pixels = image.pixels(image.read_file(self.images.paths[i]), self.size)
        except (image.ImageError, OSError) as exc:
            reason = exc if isinstance(exc, image.ImageError) else f"cannot be read: {exc.strerror}"
            raise UserError(f"{self.images.sources[i]} {reason}") from None
        return torch.from_numpy(pixels), int(self.images.labels[i])


class ImageModule(L.LightningModule):
    """Cross-entropy (weighted by class when asked); val_accuracy and macro val_f1."""

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        learning_rate: float,
        weight_decay: float,
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch, batch_idx):
        images, target = batch
        loss = self.loss_fn(self(images).float(), target)
        # sync_dist: the epoch's train_loss over every rank's batches (a no-op on one process)
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, batch_size=len(target), sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        images, target = batch
        out = self(images).float()
        n = len(target)
        self.log("val_loss", self.loss_fn(out, target), on_epoch=True, batch_size=n, sync_dist=True)
        preds = out.argmax(-1)
        self.val_accuracy(preds, target)
        self.val_f1(preds, target)
        self.log("val_accuracy", self.val_accuracy, on_epoch=True, batch_size=n)
        self.log("val_f1", self.val_f1, on_epoch=True, batch_size=n)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


class ImageDataModule(L.LightningDataModule):
    def __init__(self, rows: ImageRows, size: int, batch_size: int, num_workers: int, seed: int):
        super().__init__()
        self.rows, self.size, self.batch_size = rows, size, batch_size
        self.num_workers, self.seed = num_workers, seed

    def train_dataloader(self) -> DataLoader:
        # Resumable mid-epoch: a seeded order per epoch and a saved position.
        return loaders.train_loader(
            ImageFiles(self.rows.train, self.size),
            self.batch_size,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return loaders.eval_loader(
            ImageFiles(self.rows.val, self.size), self.batch_size, num_workers=self.num_workers
        )
