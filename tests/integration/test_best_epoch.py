"""The model directory holds the best epoch by the plug-in's monitor, not the last.

A scripted plug-in (kept in a temporary folder, as a user's would be) logs a chosen
validation score per epoch and stamps its network with the epoch it validated, so the
exported model.ckpt says which epoch it is. The shipped plug-ins' test fixtures cannot
show this: their best epoch is also their last.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests import helpers

SCORES = [0.2, 0.9, 0.4, 0.3]  # per epoch: best is epoch 1 by max, epoch 0 by min

SCRIPTED = """
from dataclasses import dataclass

from sagemaker_platform.config import setting
from sagemaker_platform.plugin import Monitor, Plugin


@dataclass(frozen=True)
class Hyperparameters:
    mode: str = setting("max", "the monitor's direction", choices=("max", "min"))


class Scripted(Plugin):
    name = "scripted"
    Hyperparameters = Hyperparameters
    metrics = ("val_score",)

    def columns(self, hp):
        return ["x"]

    def prepare(self, hp, data):
        return [float(v) for v in data.train["x"]]

    def build(self, hp, rows, ctx):
        from .model import build

        return build(rows, ctx.batch_size, SCORES)

    def monitor(self, hp, rows):
        return Monitor("val_score", hp.mode)

    def export(self, hp, rows, module, model_dir):
        pass

    def evaluate(self, hp, rows, module, out_dir):
        return {"exported_epoch": int(module.network.epoch.item())}


plugin = Scripted()
"""

MODEL = """
import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sagemaker_platform import loaders


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.register_buffer("epoch", torch.tensor(-1))


class Module(L.LightningModule):
    def __init__(self, scores):
        super().__init__()
        self.network, self.scores = Net(), scores

    def training_step(self, batch, batch_idx):
        return (self.network.layer(batch[0].unsqueeze(-1)) ** 2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        self.network.epoch.fill_(self.current_epoch)
        self.log("val_score", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Data(L.LightningDataModule):
    def __init__(self, rows, batch_size):
        super().__init__()
        self.data, self.batch_size = TensorDataset(torch.tensor(rows)), batch_size

    def train_dataloader(self):
        return loaders.train_loader(self.data, self.batch_size, seed=0)

    def val_dataloader(self):
        return loaders.eval_loader(self.data, self.batch_size)


def build(rows, batch_size, scores):
    return Module(scores), Data(rows, batch_size)
"""


@pytest.mark.parametrize("mode,best", [("max", 1), ("min", 0)])
def test_the_exported_model_is_the_best_epoch_by_the_monitor(tmp_path, mode, best):
    package = tmp_path / "plugins_on_path" / "scripted"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(SCRIPTED).replace("SCORES", repr(SCORES)))
    (package / "model.py").write_text(textwrap.dedent(MODEL))
    (package / "SAGEMAKER_PLUGIN").write_text("# a plug-in for this test\n")
    base = tmp_path / "opt_ml"
    train = base / "input" / "data" / "train"
    train.mkdir(parents=True)
    (train / "x.csv").write_text("x\n" + "\n".join(str(i / 10) for i in range(16)) + "\n")
    hp = {"model": "scripted", "epochs": str(len(SCORES)), "batch_size": "8", "mode": mode}
    helpers.write_hyperparameters(base, hp)

    result = helpers.run_entry("train", base, env={"PYTHONPATH": str(package.parent)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert metrics["exported_epoch"] == best, metrics
    weights = _weights(base / "model")
    assert int(weights["network.epoch"]) == best  # model.ckpt, what serving loads


def _weights(model_dir: Path) -> dict:
    import torch

    return torch.load(model_dir / "model.ckpt", weights_only=True)["state_dict"]
