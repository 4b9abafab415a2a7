"""The skeleton's network, LightningModule and DataModule: TODO your own.

The network is a plain `nn.Module` kept as `self.network` in the LightningModule, so
serving rebuilds it from model.ckpt without Lightning. Log `val_*` metrics in
`validation_step`: the platform keeps the best epoch by the one `monitor` names.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sagemaker_platform import loaders


class Net(nn.Module):
    def __init__(self, n_features: int):
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Module(L.LightningModule):
    def __init__(self, network: nn.Module, learning_rate: float):
        super().__init__()
        self.save_hyperparameters(ignore=["network"])  # plain values: weights-only loading
        self.network = network

    def step(self, batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.network(x).squeeze(-1), y)

    def training_step(self, batch, batch_idx):
        loss = self.step(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        # `val_*` names: the epoch line prints them and the launcher charts those the
        # plug-in's `metrics` lists; `monitor` picks the best epoch by one of them.
        self.log("val_mse", self.step(batch), on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.network.parameters(), lr=self.hparams.learning_rate)


class DataModule(L.LightningDataModule):
    def __init__(self, rows, batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.rows, self.batch_size, self.seed, self.num_workers = (
            rows,
            batch_size,
            seed,
            num_workers,
        )

    def _dataset(self, x, y) -> TensorDataset:
        return TensorDataset(torch.as_tensor(x), torch.as_tensor(y))

    def train_dataloader(self):
        # The platform's loader: a seeded order per epoch that resumes mid-epoch on spot.
        data = self._dataset(self.rows.train_x, self.rows.train_y)
        return loaders.train_loader(
            data, self.batch_size, seed=self.seed, num_workers=self.num_workers
        )

    def val_dataloader(self):
        data = self._dataset(self.rows.val_x, self.rows.val_y)
        return loaders.eval_loader(data, self.batch_size, num_workers=self.num_workers)
