"""The image classifier's files in the model directory, beside the platform's
plugin.json and model.ckpt (the best epoch's weights, `sagemaker_platform.artifacts`):

    model/
      labels.json    class names in output order (the label folders)
      network.json   the CNN's shape (`network.SmallCNN`'s arguments) and the image size
                     that training resized to, which serving resizes to as well

Reading them needs no torch (`read_spec`: what `check` uses). Both files are input: a
model directory may come from anywhere, so every value's type and range is checked
before a network is built from it, and an error names the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker_platform.artifacts import (
    CHECKPOINT,
    check_int,
    check_labels,
    check_number,
    load_state_dict,
    read_json,
)
from sagemaker_platform.errors import UserError

from .config import MAX_BLOCKS, check_shape

LABELS = "labels.json"
NETWORK = "network.json"
FORMAT_VERSION = 1
# key -> (type, lowest, highest): what network.json may hold (the hyperparameters' bounds)
_NETWORK = {
    "num_classes": (int, 2, 100_000),
    "image_size": (int, 8, 512),
    "width": (int, 1, 128),
    "blocks": (int, 1, MAX_BLOCKS),
    "dropout": (float, 0.0, 0.9),
}


@dataclass(frozen=True)
class Spec:
    """Everything about a saved model except its weights."""

    labels: list[str | int]
    network: dict[str, Any]  # SmallCNN's arguments

    @property
    def image_size(self) -> int:
        return self.network["image_size"]


def write_model_dir(out: Path, labels: list[str], network_config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / LABELS).write_text(json.dumps(list(labels), indent=1) + "\n")
    doc = {"format_version": FORMAT_VERSION, **network_config}
    (out / NETWORK).write_text(json.dumps(doc, indent=1) + "\n")


def _value(doc: dict, key: str) -> Any:
    kind, lo, hi = _NETWORK[key]
    where = f"{NETWORK}: {key}"
    if kind is int:
        return check_int(doc[key], where, lo, hi)
    return check_number(doc[key], where, lo, hi)


def read_spec(model_dir: Path) -> Spec:
    labels = check_labels(read_json(model_dir / LABELS, expect=list), LABELS)
    doc = read_json(model_dir / NETWORK, expect=dict)
    version = doc.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # True == 1 in Python
        raise UserError(
            f"model directory is corrupt: {NETWORK} has format {version!r}, "
            f"expected {FORMAT_VERSION}"
        )
    keys = set(doc) - {"format_version"}
    if keys != set(_NETWORK):
        odd = sorted(keys ^ set(_NETWORK), key=str)
        raise UserError(
            f"model directory is corrupt: {NETWORK} has other keys than expected ({odd[0]!r})"
        )
    network = {key: _value(doc, key) for key in _NETWORK}
    if network["num_classes"] != len(labels):
        raise UserError(f"model directory is corrupt: {LABELS} does not match {NETWORK}")
    check_shape(network["image_size"], network["blocks"], f"model directory is corrupt: {NETWORK}")
    if not (model_dir / CHECKPOINT).is_file():
        raise UserError(f"model directory is incomplete: {CHECKPOINT} is missing from {model_dir}")
    return Spec(labels, network)


def load_network(model_dir: Path, spec: Spec):
    """The plain SmallCNN with its trained weights (weights-only load, no Lightning)."""
    from .network import SmallCNN

    net = SmallCNN.from_config(spec.network)
    try:
        net.load_state_dict(load_state_dict(model_dir, prefix="network."))
    except RuntimeError as exc:
        raise UserError(f"{CHECKPOINT} does not fit {NETWORK}: {str(exc).splitlines()[0]}") from exc
    return net.eval()
