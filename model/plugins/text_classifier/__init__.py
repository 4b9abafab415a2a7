"""The text classifier: a Hugging Face encoder (MiniLM by default) fine-tuned with a
classification head. The plug-in the platform trains when `model` is not set.

    config.py          Hyperparameters (and MODEL_SERVER_BACKBONE)
    data.py            DataFrames -> texts and labels, the held-out split
    pretrained.py      where fine-tuning starts: the `pretrained` channel or `backbone`
    text.py            the one preprocessing path (tokenizer), shared by both sides
    network.py, bert.py  the plain nn.Module; BERT-family encoders in plain torch
    lightning_module.py  the LightningModule and DataModule (length-grouped batches)
    artifacts.py       its files in the model directory
    inference.py, bucketing.py  the loaded model; forward passes grouped by length
    codecs.py          requests and answers (JSON, JSON Lines, CSV, plain text)

Imports stay light here: the platform imports this package in `serve` and before
checking the data in `train`; torch, Lightning and transformers load in the methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_platform.codecs import top_k
from sagemaker_platform.plugin import Monitor, Plugin, TrainContext, TrainingData

from . import codecs
from .config import Hyperparameters, ServeSettings


@dataclass
class TextRows:
    """What `prepare` found: the labelled texts and where fine-tuning starts."""

    splits: Any  # data.Splits
    backbone: str  # a model folder or a hub id


class TextClassifierPlugin(Plugin):
    name = "text_classifier"
    Hyperparameters = Hyperparameters
    ServeSettings = ServeSettings
    metrics = ("val_loss", "val_accuracy", "val_f1")
    # MiniLM in bf16-mixed on AVX512-BF16: 1.32x fp32 per CPU second, the same held-out
    # macro-F1 (docs/results.md#training-precision).
    bf16_on_cpu = True
    content_types = codecs.CONTENT_TYPES
    accept_types = codecs.ACCEPT_TYPES

    # --- training ------------------------------------------------------------------------
    def columns(self, hp: Hyperparameters) -> Sequence[str]:
        return (hp.text_column, hp.label_column)

    def prepare(self, hp: Hyperparameters, data: TrainingData) -> TextRows:
        from . import pretrained
        from .data import load_splits

        splits = load_splits(data, hp.text_column, hp.label_column)
        channel = data.channels.get(pretrained.CHANNEL)
        backbone = pretrained.resolve(hp, channel, data.scratch, data.archive_limits)
        return TextRows(splits, backbone)

    def summary(self, rows: TextRows) -> dict[str, Any]:
        s = rows.splits
        return {
            "train_texts": len(s.train_texts),
            "val_texts": len(s.val_texts),
            "classes": s.num_classes,
            "validation": s.validation,
            "backbone": Path(rows.backbone).name,
        }

    def vocabulary(self, rows: TextRows) -> dict[str, Any]:
        return {"classes": list(rows.splits.names)}

    def build(self, hp: Hyperparameters, rows: TextRows, ctx: TrainContext):
        from sagemaker_platform.splitting import class_weights

        from . import pretrained
        from .lightning_module import ClassifierModule, TextDataModule
        from .text import TextEncoder

        splits = rows.splits
        tokenizer, settings, net = pretrained.load(rows.backbone, splits.names, hp)
        encoder = TextEncoder(tokenizer, settings)
        weights = (
            class_weights(splits.train_labels, splits.num_classes) if hp.class_weighting else None
        )
        module = ClassifierModule(
            net,
            splits.num_classes,
            hp.learning_rate,
            hp.head_learning_rate,
            hp.weight_decay,
            hp.warmup_ratio,
            weights,
        )
        module.encoder, module.tokenizer = encoder, tokenizer  # for export and evaluate
        datamodule = TextDataModule(
            splits, encoder, ctx.batch_size, ctx.num_workers, hp.group_by_length, ctx.seed
        )
        return module, datamodule

    def monitor(self, hp: Hyperparameters, rows: TextRows) -> Monitor | None:
        return Monitor("val_f1", "max") if rows.splits.has_validation else None

    def export(self, hp: Hyperparameters, rows: TextRows, module, model_dir: Path) -> None:
        from . import artifacts

        spec = artifacts.ModelSpec(
            labels=rows.splits.names, text=module.encoder.settings, pooling=hp.pooling
        )
        artifacts.write_model_dir(model_dir, spec, module.network.backbone.config, module.tokenizer)

    def evaluate(self, hp: Hyperparameters, rows: TextRows, module, out_dir: Path) -> dict:
        from sagemaker_platform import evaluation

        splits = rows.splits
        y_pred = predict_validation(module.network, module.encoder, splits)
        return evaluation.classification_evaluation(
            splits.val_labels, y_pred, splits.names, out_dir
        )

    # --- serving -------------------------------------------------------------------------
    def check(self, model_dir: Path) -> None:
        from sagemaker_platform.errors import UserError

        from . import artifacts

        artifacts.read_backbone_config(model_dir, artifacts.read_spec(model_dir))
        if not (model_dir / artifacts.TOKENIZER / "tokenizer.json").is_file():
            raise UserError("model directory is incomplete: tokenizer/tokenizer.json is missing")

    def load(self, model_dir: Path, runtime):
        from sagemaker_platform.config import parse_env

        from .inference import Model

        return Model(model_dir, runtime, parse_env(ServeSettings).backbone)

    def warm_up(self, model) -> None:
        model.warm_up()

    def sample_request(self, model) -> tuple[bytes, str]:
        return codecs.SAMPLE_REQUEST

    def decode(self, model, body: bytes, content_type: str, options: Mapping[str, str]):
        top_k(options, len(model.labels))  # a bad top_k is a 400 before any work
        return codecs.decode(body, content_type)

    def predict(self, model, records: Sequence[codecs.TextRecord]):
        """Class probabilities, one row per record (a tensor: the engine slices it)."""
        return model.predict_proba([r.text for r in records])

    def encode(self, model, records, outputs, accept: str, options) -> str:
        k = top_k(options, len(model.labels))
        return codecs.encode(codecs.answers(records, outputs.tolist(), model.labels, k), accept)


def predict_validation(net, encoder, splits):
    """`net`'s class for each validation text (a numpy array)."""
    import torch

    preds = []
    with torch.inference_mode():
        for start in range(0, len(splits.val_texts), 64):
            batch = encoder(splits.val_texts[start : start + 64])
            preds.append(net(batch["input_ids"], batch["attention_mask"]).argmax(-1))
    return torch.cat(preds).numpy()


plugin = TextClassifierPlugin()
