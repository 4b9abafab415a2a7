"""Lightning around the plain network: the module (loss, metrics, optimiser) and the
data module (the platform's resumable loaders over the prepared arrays)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanAbsoluteError, MeanSquaredError
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from sagemaker_platform import loaders

from .data import Table


class TabularModule(L.LightningModule):
    """Cross-entropy for classification; for regression, mean squared error on the
    standardised target, with val_rmse and val_mae reported in the target's own units."""

    def __init__(
        self,
        network: nn.Module,
        task: str,
        num_classes: int,
        learning_rate: float,
        weight_decay: float,
        class_weights: list[float] | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ):
        super().__init__()
        # Plain values only, so the checkpoint loads with weights_only=True.
        self.save_hyperparameters(ignore=["network"])
        self.network = network
        self.classification = task == "classification"
        if self.classification:
            weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
            self.loss_fn: nn.Module = nn.CrossEntropyLoss(weight=weight)
            self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
            self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        else:
            self.loss_fn = nn.MSELoss()
            self.val_rmse = MeanSquaredError(squared=False)
            self.val_mae = MeanAbsoluteError()

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        out = self.network(numeric, categorical)
        return out if self.classification else out.squeeze(-1)

    def model_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        numeric, categorical, target = batch
        out = self(numeric, categorical).float()
        return self.loss_fn(out, target), out, target

    def training_step(self, batch, batch_idx):
        loss, _, target = self.model_step(batch)
        # sync_dist: the epoch's train_loss over every rank's batches (a no-op on one process)
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, batch_size=len(target), sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        loss, out, target = self.model_step(batch)
        n = len(target)
        self.log("val_loss", loss, on_epoch=True, batch_size=n, sync_dist=True)
        if self.classification:
            preds = out.argmax(-1)
            self.val_accuracy(preds, target)
            self.val_f1(preds, target)
            self.log("val_accuracy", self.val_accuracy, on_epoch=True, batch_size=n)
            self.log("val_f1", self.val_f1, on_epoch=True, batch_size=n)
        else:
            mean, std = self.hparams.target_mean, self.hparams.target_std
            preds, actual = out * std + mean, target * std + mean
            self.val_rmse(preds, actual)
            self.val_mae(preds, actual)
            self.log("val_rmse", self.val_rmse, on_epoch=True, batch_size=n)
            self.log("val_mae", self.val_mae, on_epoch=True, batch_size=n)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


def dataset(table: Table, target) -> TensorDataset:
    return TensorDataset(
        torch.from_numpy(table.numeric), torch.from_numpy(table.categorical), target
    )


class TabularDataModule(L.LightningDataModule):
    """The prepared arrays as tensors; regression targets standardised (`scale`)."""

    def __init__(self, rows, batch_size: int, num_workers: int, seed: int):
        super().__init__()
        self.rows, self.batch_size, self.num_workers, self.seed = (
            rows,
            batch_size,
            num_workers,
            seed,
        )

    def _dataset(self, table: Table) -> TensorDataset:
        schema = self.rows.schema
        if schema.task == "classification":
            target = torch.from_numpy(table.target.astype("int64"))
        else:
            target = torch.from_numpy(schema.scale_target(table.target))
        return dataset(table, target)

    def train_dataloader(self) -> DataLoader:
        # Resumable mid-epoch: a seeded order per epoch and a saved position.
        return loaders.train_loader(
            self._dataset(self.rows.train),
            self.batch_size,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return loaders.eval_loader(
            self._dataset(self.rows.val), self.batch_size, num_workers=self.num_workers
        )
