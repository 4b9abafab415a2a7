"""Tabular data: a small MLP over numeric and categorical columns, for classification
or regression. Train with `model=tabular` and `label_column=...`; the worked example of
bringing your own model to the platform.

    config.py            Hyperparameters (label_column, task, hidden_sizes, ...)
    schema.py            the feature schema and THE preprocessing function both sides use
    data.py              DataFrames -> schema and arrays; the data's errors; the split
    network.py           the plain nn.Module (embeddings + MLP), rebuilt by serving
    lightning_module.py  the LightningModule (loss, metrics) and the DataModule
    artifacts.py         its files in the model directory: schema.json, network.json
    inference.py         the loaded model: stacks checked rows, runs the network
    codecs.py            requests (JSON records or columns, JSON Lines, CSV) and answers
    sample.py            a synthetic houses table and requests, for the demo and tests

Imports stay light here: the platform imports this package in `serve` and before
checking the data in `train`; pandas loads in `prepare`, torch and Lightning after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sagemaker_platform.plugin import Monitor, Plugin, TrainContext, TrainingData

from . import codecs
from .config import Hyperparameters, hidden_layers, names


class TabularPlugin(Plugin):
    name = "tabular"
    Hyperparameters = Hyperparameters
    metrics = ("val_loss", "val_accuracy", "val_f1", "val_rmse", "val_mae")
    content_types = codecs.CONTENT_TYPES
    accept_types = codecs.ACCEPT_TYPES

    # --- training ------------------------------------------------------------------------
    def columns(self, hp: Hyperparameters) -> Sequence[str]:
        # The reader names the file that lacks one of these; with feature_columns empty,
        # `data.check_columns` compares the files' columns instead.
        return (hp.label_column, *names(hp.feature_columns))

    def prepare(self, hp: Hyperparameters, data: TrainingData):
        from .data import load_rows

        hidden_layers(hp)  # a bad hidden_sizes fails before the rows are checked
        return load_rows(hp, data)

    def summary(self, rows) -> dict[str, Any]:
        schema = rows.schema
        out = {
            "task": schema.task,
            "train_examples": len(rows.train),
            "val_examples": len(rows.val),
            "numeric_columns": len(schema.numeric),
            "categorical_columns": len(schema.categorical),
            "validation": rows.validation,
        }
        if schema.task == "classification":
            out["classes"] = len(schema.labels)
        return out

    def vocabulary(self, rows) -> dict[str, Any]:
        # Column statistics are left out: every shard's differ a little, and the
        # network's inputs keep their meaning.
        schema = rows.schema
        return {
            "classes": list(schema.labels),
            **{f"categories of {c.name}": list(c.categories) for c in schema.categorical},
        }

    def build(self, hp: Hyperparameters, rows, ctx: TrainContext):
        from sagemaker_platform.splitting import class_weights

        from .lightning_module import TabularDataModule, TabularModule
        from .network import TabularNet

        schema = rows.schema
        classification = schema.task == "classification"
        net = TabularNet(
            num_numeric=len(schema.numeric),
            cardinalities=[c.cardinality for c in schema.categorical],
            hidden_sizes=hidden_layers(hp),
            dropout=hp.dropout,
            outputs=len(schema.labels) if classification else 1,
        )
        weights = None
        if classification and hp.class_weighting:
            weights = class_weights(rows.train.target, len(schema.labels))
        module = TabularModule(
            net,
            schema.task,
            len(schema.labels),
            hp.learning_rate,
            hp.weight_decay,
            weights,
            schema.target_mean,
            schema.target_std,
        )
        return module, TabularDataModule(rows, ctx.batch_size, ctx.num_workers, ctx.seed)

    def monitor(self, hp: Hyperparameters, rows) -> Monitor | None:
        if not rows.has_validation:
            return None
        if rows.schema.task == "classification":
            return Monitor("val_f1", "max")
        return Monitor("val_rmse", "min")

    def export(self, hp: Hyperparameters, rows, module, model_dir: Path) -> None:
        from . import artifacts

        artifacts.write_model_dir(model_dir, rows.schema, module.network.config)

    def evaluate(self, hp: Hyperparameters, rows, module, out_dir: Path) -> dict:
        return evaluate(module.network, rows, out_dir)

    # --- serving -------------------------------------------------------------------------
    def check(self, model_dir: Path) -> None:
        from . import artifacts

        artifacts.read_network_config(model_dir, artifacts.read_schema(model_dir))

    def load(self, model_dir: Path, runtime):
        from .inference import TabularModel

        return TabularModel(model_dir, runtime)

    def sample_request(self, model) -> tuple[bytes, str]:
        return codecs.sample_request(model.schema)

    def decode(self, model, body: bytes, content_type: str, options: Mapping[str, str]):
        codecs.top_k(options, model.schema)  # a bad top_k is a 400 before any work
        return codecs.decode(model.schema, body, content_type)

    def predict(self, model, records: Sequence[codecs.Row]):
        import numpy as np

        numeric = np.stack([r.numeric for r in records])
        categorical = np.stack([r.categorical for r in records])
        return model.predict(numeric, categorical)  # one row (or value) per record

    def encode(self, model, records, outputs, accept: str, options: Mapping[str, str]) -> str:
        k = codecs.top_k(options, model.schema)
        return codecs.encode(model.schema, records, outputs, accept, k)


def evaluate(net, rows, out_dir: Path) -> dict:
    """The network on the validation rows: a classification report and confusion matrix,
    or RMSE/MAE/R² and a predicted-vs-actual plot; `val_*` figures at the top level."""
    import torch

    from sagemaker_platform import evaluation

    schema, val = rows.schema, rows.val
    with torch.inference_mode():
        out = net.eval()(torch.from_numpy(val.numeric), torch.from_numpy(val.categorical))
    if schema.task == "classification":
        return evaluation.classification_evaluation(
            val.target, out.argmax(-1).numpy(), list(schema.labels), out_dir
        )
    predicted = schema.unscale_target(out[:, 0].double().numpy())
    report = evaluation.regression_report(val.target, predicted)
    evaluation.plot_predicted_vs_actual(val.target, predicted, out_dir / "predicted_vs_actual.png")
    return {
        "val_rmse": report["rmse"],
        "val_mae": report["mae"],
        "val_r2": report["r2"],
        **report,
    }


plugin = TabularPlugin()
