"""skeleton: a model plug-in to fill in (written by `make new-model NAME=skeleton`).

It trains and serves as it is: a linear model that predicts the number in `y` from the
numeric columns `x1` and `x2` of its sample data. Replace what the TODOs say; the
platform does the rest (SageMaker's files, hosts, spot resume, checkpoints, metrics,
nginx + gunicorn, batching, content types, errors). Try it:

    export TEST_DIR=/tmp/skeleton MODEL=skeleton
    local_test/train_local.sh --local    # writes sample.py's job into TEST_DIR, trains
    local_test/serve_local.sh --local    # serves it on :8080

    __init__.py   this file: the Plugin (no torch import here: keep it light)
    model.py      the network (a plain nn.Module), the LightningModule, the DataModule
    sample.py     sample data and requests, for the demo and the platform tests
    SAGEMAKER_PLUGIN  the marker that makes this folder a plug-in: without it, the
                  platform never imports the folder (keep it)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_platform import codecs
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.config import setting
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import Monitor, Plugin, TrainContext, TrainingData

FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class Hyperparameters:
    """TODO: your hyperparameters. Each is a key of hyperparameters.json (a string there),
    typed and checked by the platform, listed by `python -m launcher train --help`."""

    feature_columns: str = setting("x1,x2", "comma-separated numeric input columns")
    target_column: str = setting("y", "the numeric column to predict")
    learning_rate: float = setting(0.05, "SGD learning rate", lo=0.0, hi=10.0)

    @property
    def features(self) -> list[str]:
        return [c.strip() for c in self.feature_columns.split(",") if c.strip()]


@dataclass
class Rows:
    """What `prepare` hands to the later steps: TODO your own (tokens, images...)."""

    features: list[str]
    train_x: Any  # float32 arrays
    train_y: Any
    val_x: Any
    val_y: Any


class SkeletonPlugin(Plugin):
    name = "skeleton"
    Hyperparameters = Hyperparameters
    metrics = ("val_mse",)  # the val_* metrics model.Module logs: charted by SageMaker
    # content_types / accept_types: JSON and JSON Lines by default; add codecs.CSV here
    # (and handle it in decode/encode) to take CSV.

    # --- training: before torch is imported -------------------------------------------
    def columns(self, hp: Hyperparameters) -> Sequence[str]:
        return [*hp.features, hp.target_column]

    def prepare(self, hp: Hyperparameters, data: TrainingData) -> Rows:
        """TODO: turn the channels' DataFrames into your rows; raise UserError naming
        the column and the file for bad data."""
        import numpy as np
        import pandas as pd

        from sagemaker_platform.channels import SOURCE
        from sagemaker_platform.splitting import held_out

        def arrays(df: pd.DataFrame):
            for column in self.columns(hp):
                values = pd.to_numeric(df[column], errors="coerce")
                bad = values.isna()
                if bad.any():
                    row = df.index[bad][0]
                    raise UserError(
                        f"column {column!r} needs numbers; {df.at[row, SOURCE]} has "
                        f"{df.at[row, column]!r}"
                    )
            x = df[hp.features].to_numpy(dtype=np.float32)
            return x, df[hp.target_column].to_numpy(dtype=np.float32)

        x, y = arrays(data.train)
        # the validation channel, or validation_fraction of the rows held out (stratified
        # by class if you pass labels: a classifier's held_out(data, len(y), y))
        train_idx, val_idx, _ = held_out(data, len(x))
        if val_idx is None:
            val_x, val_y = arrays(data.validation)
        else:
            x, y, val_x, val_y = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
        return Rows(hp.features, x, y, val_x, val_y)

    def summary(self, rows: Rows) -> dict[str, Any]:
        return {"features": len(rows.features), "val_rows_used": len(rows.val_y)}

    # TODO: if `prepare` learns classes or a vocabulary from the rows, return them from
    # `vocabulary(self, rows)` (e.g. {"classes": [...]}): hosts that each read their own
    # shard of a sharded channel compare it before training. This model learns none.

    # --- training: with torch and Lightning -------------------------------------------
    def build(self, hp: Hyperparameters, rows: Rows, ctx: TrainContext):
        from .model import DataModule, Module, Net

        module = Module(Net(len(rows.features)), hp.learning_rate)
        return module, DataModule(rows, ctx.batch_size, ctx.seed, ctx.num_workers)

    def monitor(self, hp: Hyperparameters, rows: Rows) -> Monitor | None:
        return Monitor("val_mse", "min") if len(rows.val_y) else None

    def export(self, hp: Hyperparameters, rows: Rows, module, model_dir: Path) -> None:
        """TODO: write what serving needs besides the weights (platform's model.ckpt)."""
        import json

        (model_dir / FEATURES_FILE).write_text(json.dumps(rows.features))

    def evaluate(self, hp: Hyperparameters, rows: Rows, module, out_dir: Path) -> dict:
        """TODO: your figures on the best epoch's weights, over all validation rows at
        once; `val_*` numbers go into the job's result line (an epoch line's figure is a
        mean over batches, so a non-linear one like RMSE may differ in the last digits)."""
        import torch

        with torch.inference_mode():
            pred = module.network(torch.as_tensor(rows.val_x)).squeeze(-1)
        mse = float(((pred - torch.as_tensor(rows.val_y)) ** 2).mean())
        return {"val_mse": round(mse, 6)}

    # --- serving (never imports Lightning) --------------------------------------------
    def check(self, model_dir: Path) -> None:
        if not (model_dir / FEATURES_FILE).is_file():
            raise UserError(f"model directory is incomplete: {FEATURES_FILE} is missing")

    def load(self, model_dir: Path, runtime):
        import json

        from sagemaker_platform.artifacts import load_state_dict

        from .model import Net

        features = json.loads((model_dir / FEATURES_FILE).read_text())
        net = Net(len(features))
        net.load_state_dict(load_state_dict(model_dir, prefix="network."))
        return net.to(runtime.device).eval(), features

    def decode(self, model, body: bytes, content_type: str, options: Mapping[str, str]):
        """TODO: your request format. Here: JSON or JSON Lines records like
        {"x1": 1.5, "x2": -0.3, "id": "optional"}. Every check is here, a 400 naming the
        record and the field: `predict` shares its batch with other requests."""
        _, features = model
        records = codecs.decode_records(body, content_type)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise HTTPError(400, f"record {i + 1} must be an object of feature values")
            for name in features:
                if not _usable_number(record.get(name)):
                    raise HTTPError(
                        400, f"record {i + 1}: {name!r} must be a number (finite, float32)"
                    )
        return records

    def sample_request(self, model) -> tuple[bytes, str]:
        """TODO: one small request your model must answer, built from what it knows:
        the platform sends it through decode, predict and encode before /ping says ready."""
        import json

        _, features = model
        return json.dumps([{name: 0.0 for name in features}]).encode(), codecs.JSON

    def predict(self, model, records: Sequence[dict]) -> list[float]:
        import torch

        net, features = model
        x = torch.tensor([[float(r[f]) for f in features] for r in records])
        with torch.inference_mode():
            return net(x.to(next(net.parameters()).device)).squeeze(-1).cpu().tolist()

    def encode(self, model, records, outputs, accept: str, options) -> str:
        answers = [
            {**({"id": r["id"]} if "id" in r else {}), "prediction": round(y, 6)}
            for r, y in zip(records, outputs, strict=True)
        ]
        return codecs.encode_records(answers, accept)


def _usable_number(value: Any) -> bool:
    """A number the float32 network can take: not a bool, not NaN or infinite, and not
    past float32's range (1e308 or a 400-digit integer would answer null, or fail every
    request that shares its batch)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and abs(float(value)) < 3.0e38
    except OverflowError:
        return False


plugin = SkeletonPlugin()
