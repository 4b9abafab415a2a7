"""The tabular plug-in's files in the model directory, beside the platform's plugin.json
and model.ckpt (the best epoch's weights, `sagemaker_platform.artifacts`):

    model/
      schema.json    feature columns, their statistics and vocabularies, the labels or
                     the target's scale (`schema.Schema`)
      network.json   the MLP's shape (`network.TabularNet`'s arguments)

Reading them needs no torch (`read_schema`, `read_network_config`: what `check` uses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagemaker_platform.artifacts import CHECKPOINT, load_state_dict, read_json
from sagemaker_platform.errors import UserError

from .schema import Schema

SCHEMA = "schema.json"
NETWORK = "network.json"
_NETWORK_KEYS = {"num_numeric", "cardinalities", "hidden_sizes", "dropout", "outputs"}


def write_model_dir(out: Path, schema: Schema, network_config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / SCHEMA).write_text(json.dumps(schema.to_dict(), indent=1) + "\n")
    (out / NETWORK).write_text(json.dumps(network_config, indent=1) + "\n")


def read_schema(model_dir: Path) -> Schema:
    return Schema.from_dict(read_json(model_dir / SCHEMA, expect=dict))


def read_network_config(model_dir: Path, schema: Schema | None = None) -> dict[str, Any]:
    config = read_json(model_dir / NETWORK, expect=dict)
    if not isinstance(config, dict) or set(config) != _NETWORK_KEYS:
        raise UserError(f"model directory is corrupt: {NETWORK} has other keys than expected")
    schema = schema or read_schema(model_dir)
    if config["num_numeric"] != len(schema.numeric) or len(config["cardinalities"]) != len(
        schema.categorical
    ):
        raise UserError(f"model directory is corrupt: {NETWORK} does not match {SCHEMA}")
    return config


def load_network(model_dir: Path, schema: Schema):
    """The plain TabularNet with its trained weights (weights-only load, no Lightning)."""
    from .network import TabularNet

    net = TabularNet.from_config(read_network_config(model_dir, schema))
    try:
        net.load_state_dict(load_state_dict(model_dir, prefix="network."))
    except RuntimeError as exc:
        raise UserError(f"{CHECKPOINT} does not fit {NETWORK}: {str(exc).splitlines()[0]}") from exc
    return net.eval()
