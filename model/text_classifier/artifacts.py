"""The model directory: what training writes and serving reads, and nothing else.

    model/
      model.ckpt          Lightning checkpoint of the best epoch, plain contents only
                          (tensors, numbers, strings): torch.load(weights_only=True)
      backbone/           the backbone's config.json (architecture, no weights)
      tokenizer/          tokenizer.json (the Rust tokenizer both sides use)
      labels.json         class names in output order
      preprocessing.json  text settings (max_length, normalisation, padding)
      classifier.json     head settings (pooling, number of classes)

SageMaker tars this folder into model.tar.gz and untars it in the serving container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .text import TextSettings, save_tokenizer

CHECKPOINT = "model.ckpt"
BACKBONE = "backbone"
TOKENIZER = "tokenizer"
LABELS = "labels.json"
PREPROCESSING = "preprocessing.json"
CLASSIFIER = "classifier.json"
FORMAT_VERSION = 1

# The keys of a Lightning checkpoint that serving or a resumed fine-tune may need;
# optimizer and loop state stay in checkpoints/, not in the model.
_KEEP = ("state_dict", "hyper_parameters", "epoch", "global_step", "pytorch-lightning_version")


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a saved model except its weights."""

    labels: list[str | int]
    text: TextSettings
    pooling: str

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def _plain(value: Any) -> Any:
    """Values torch.load(weights_only=True) accepts: no custom classes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a tensor
        return value
    return str(value)


def write_model_dir(
    out: Path, checkpoint: dict[str, Any], spec: ModelSpec, backbone_config, tokenizer
) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    plain = {k: _plain(checkpoint[k]) for k in _KEEP if k in checkpoint}
    plain["state_dict"] = {k: v.detach().cpu() for k, v in checkpoint["state_dict"].items()}
    torch.save(plain, out / CHECKPOINT)
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


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"model directory is incomplete: {path.name} is missing from {path.parent}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(
            f"model directory is corrupt: {path.name} is not valid JSON ({exc})"
        ) from exc


def read_spec(model_dir: Path) -> ModelSpec:
    if not model_dir.is_dir():
        raise UserError(f"no model directory at {model_dir}; run training first")
    labels = _read_json(model_dir / LABELS)
    text = TextSettings.from_dict(_read_json(model_dir / PREPROCESSING))
    head = _read_json(model_dir / CLASSIFIER)
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
    config = _read_json(model_dir / BACKBONE / "config.json")
    if not isinstance(config, dict) or "model_type" not in config:
        raise UserError(f"model directory is corrupt: {BACKBONE}/config.json has no model_type")
    return config


def network_state_dict(model_dir: Path) -> dict[str, Any]:
    """The plain network's weights from the Lightning checkpoint, loaded safely."""
    import torch

    try:
        ckpt = torch.load(model_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot load {CHECKPOINT}: {str(exc).splitlines()[0]}") from exc
    prefix = "network."
    return {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


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
