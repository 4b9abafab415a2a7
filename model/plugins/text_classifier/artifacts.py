"""The text classifier's files in the model directory, beside the platform's plugin.json
and model.ckpt (the best epoch's weights, `sagemaker_platform.artifacts`):

    model/
      backbone/           the backbone's config.json (architecture, no weights)
      tokenizer/          tokenizer.json (the Rust tokenizer both sides use)
      labels.json         class names in output order
      preprocessing.json  text settings (max_length, normalisation, padding)
      classifier.json     head settings (pooling, number of classes)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_platform.artifacts import CHECKPOINT, check_labels, load_state_dict, read_json
from sagemaker_platform.errors import UserError

from .text import TextSettings, save_tokenizer

BACKBONE = "backbone"
TOKENIZER = "tokenizer"
LABELS = "labels.json"
PREPROCESSING = "preprocessing.json"
CLASSIFIER = "classifier.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a saved model except its weights."""

    labels: list[str | int]
    text: TextSettings
    pooling: str

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def write_model_dir(out: Path, spec: ModelSpec, backbone_config, tokenizer) -> None:
    out.mkdir(parents=True, exist_ok=True)
    backbone_config.save_pretrained(str(out / BACKBONE))
    save_tokenizer(tokenizer, out / TOKENIZER)
    (out / LABELS).write_text(json.dumps(spec.labels, indent=1) + "\n")
    (out / PREPROCESSING).write_text(json.dumps(spec.text.to_dict(), indent=1) + "\n")
    (out / CLASSIFIER).write_text(
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "pooling": spec.pooling,
                "num_classes": spec.num_classes,
            },
            indent=1,
        )
        + "\n"
    )


def read_spec(model_dir: Path) -> ModelSpec:
    if not model_dir.is_dir():
        raise UserError(f"no model directory at {model_dir}; run training first")
    labels = check_labels(read_json(model_dir / LABELS, expect=list), LABELS)
    text = TextSettings.from_dict(read_json(model_dir / PREPROCESSING, expect=dict))
    head = read_json(model_dir / CLASSIFIER, expect=dict)
    if head.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"model directory has format {head.get('format_version')}, expected {FORMAT_VERSION}"
        )
    if not isinstance(labels, list) or len(labels) != head.get("num_classes"):
        raise UserError("model directory is corrupt: labels.json does not match classifier.json")
    for name in (CHECKPOINT, BACKBONE, TOKENIZER):
        if not (model_dir / name).exists():
            raise UserError(f"model directory is incomplete: {name} is missing from {model_dir}")
    return ModelSpec(labels=labels, text=text, pooling=head["pooling"])


def read_backbone_config(model_dir: Path) -> dict[str, Any]:
    """backbone/config.json: the architecture serving rebuilds."""
    config = read_json(model_dir / BACKBONE / "config.json", expect=dict)
    if not isinstance(config, dict) or "model_type" not in config:
        raise UserError(f"model directory is corrupt: {BACKBONE}/config.json has no model_type")
    return config


def network_state_dict(model_dir: Path) -> dict[str, Any]:
    """The plain network's weights from the Lightning checkpoint, loaded safely."""
    return load_state_dict(model_dir, prefix="network.")


def load_network(model_dir: Path, spec: ModelSpec | None = None, backbone: str = "auto"):
    """Rebuild the plain TextClassifier with its trained weights, for inference: no
    Lightning import, and for BERT-family backbones no transformers import either
    (`network.for_inference`)."""
    from . import network

    spec = spec or read_spec(model_dir)
    config = read_backbone_config(model_dir)
    net = network.for_inference(
        model_dir / BACKBONE, config, spec.num_classes, spec.pooling, backbone
    )
    try:
        net.load_state_dict(network_state_dict(model_dir), assign=True)
    except RuntimeError as exc:
        raise UserError(
            f"{CHECKPOINT} does not fit the saved architecture: {str(exc).splitlines()[0]}"
        ) from exc
    return net.eval()
