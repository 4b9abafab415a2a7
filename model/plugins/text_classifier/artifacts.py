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

from sagemaker_platform.artifacts import (
    CHECKPOINT,
    check_choice,
    check_int,
    check_labels,
    check_number,
    check_str,
    corrupt,
    first_line,
    load_state_dict,
    member,
    read_json,
    shown,
)
from sagemaker_platform.errors import UserError

from .text import TextSettings, save_tokenizer

BACKBONE = "backbone"
TOKENIZER = "tokenizer"
LABELS = "labels.json"
PREPROCESSING = "preprocessing.json"
CLASSIFIER = "classifier.json"
FORMAT_VERSION = 1
POOLINGS = ("mean", "cls")


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
    text = TextSettings.from_dict(read_json(model_dir / PREPROCESSING, expect=dict), PREPROCESSING)
    head = read_json(model_dir / CLASSIFIER, expect=dict)
    version = head.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise UserError(f"model directory has format {shown(version)}, expected {FORMAT_VERSION}")
    pooling = check_choice(member(head, "pooling", CLASSIFIER), f"{CLASSIFIER}: pooling", POOLINGS)
    num_classes = check_int(
        member(head, "num_classes", CLASSIFIER), f"{CLASSIFIER}: num_classes", 2, 2**31 - 1
    )
    if len(labels) != num_classes:
        raise UserError("model directory is corrupt: labels.json does not match classifier.json")
    for name in (CHECKPOINT, BACKBONE, TOKENIZER):
        if not (model_dir / name).exists():
            raise UserError(f"model directory is incomplete: {name} is missing from {model_dir}")
    return ModelSpec(labels=labels, text=text, pooling=pooling)


# The fields of a backbone's config.json that size its layers (BERT's names; other
# architectures have their own, which transformers checks): positive integers when there.
_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)


def read_backbone_config(model_dir: Path, spec: ModelSpec | None = None) -> dict[str, Any]:
    """backbone/config.json: the architecture serving rebuilds, its sizes checked, and
    checked against `spec` when given: the padding token within the vocabulary, and
    max_length within the position embeddings."""
    where = f"{BACKBONE}/config.json"
    config = read_json(model_dir / BACKBONE / "config.json", expect=dict)
    if "model_type" not in config:
        raise UserError(f"model directory is corrupt: {where} has no model_type")
    check_str(config["model_type"], f"{where}: model_type")
    for key in _SIZES:
        if key in config:
            check_int(config[key], f"{where}: {key}", 1, 2**31 - 1)
    if config.get("pad_token_id") is not None:
        check_int(config["pad_token_id"], f"{where}: pad_token_id", 0, 2**31 - 1)
    if "layer_norm_eps" in config:
        check_number(config["layer_norm_eps"], f"{where}: layer_norm_eps", positive=True)
    if spec is not None:
        text = spec.text
        if "vocab_size" in config and text.pad_id >= config["vocab_size"]:
            raise corrupt(
                f"{PREPROCESSING}: pad_id",
                f"is {text.pad_id}, outside {where}'s vocab_size {config['vocab_size']}",
            )
        positions = config.get("max_position_embeddings")
        if positions is not None and text.max_length > positions:
            raise corrupt(
                f"{PREPROCESSING}: max_length",
                f"is {text.max_length}, more than {where}'s max_position_embeddings {positions}",
            )
    return config


def check_tokenizer(tokenizer, config: dict[str, Any]) -> None:
    """Every token id the tokenizer can give is a row of the embeddings, and its regexes
    cannot backtrack for minutes (`text.check_patterns`)."""
    from .text import check_patterns

    check_patterns(tokenizer.to_str(), f"model directory is corrupt: {TOKENIZER}/tokenizer.json")
    vocab_size = config.get("vocab_size")
    largest = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
    if vocab_size is not None and largest >= vocab_size:
        raise corrupt(
            f"{TOKENIZER}/tokenizer.json",
            f"has token id {largest}, outside {BACKBONE}/config.json's vocab_size {vocab_size}",
        )


def network_state_dict(model_dir: Path) -> dict[str, Any]:
    """The plain network's weights from the Lightning checkpoint, loaded safely."""
    return load_state_dict(model_dir, prefix="network.")


def load_network(model_dir: Path, spec: ModelSpec | None = None, backbone: str = "auto"):
    """Rebuild the plain TextClassifier with its trained weights, for inference: no
    Lightning import, and for BERT-family backbones no transformers import either
    (`network.for_inference`)."""
    from . import network

    spec = spec or read_spec(model_dir)
    config = read_backbone_config(model_dir, spec)
    try:
        net = network.for_inference(
            model_dir / BACKBONE, config, spec.num_classes, spec.pooling, backbone
        )
    except Exception as exc:  # transformers' own checks of a config raise anything
        raise corrupt(f"{BACKBONE}/config.json", f"builds no network: {first_line(exc)}") from exc
    try:
        net.load_state_dict(network_state_dict(model_dir), assign=True)
    except RuntimeError as exc:
        raise UserError(
            f"{CHECKPOINT} does not fit the saved architecture: {str(exc).splitlines()[0]}"
        ) from exc
    return net.eval()
