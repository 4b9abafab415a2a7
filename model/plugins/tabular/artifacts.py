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

from sagemaker_platform.artifacts import (
    CHECKPOINT,
    check_int,
    check_list,
    check_number,
    corrupt,
    load_state_dict,
    read_json,
    shown,
)
from sagemaker_platform.errors import UserError

from .config import MAX_WIDTH
from .schema import CLASSIFICATION, SCHEMA, Schema

NETWORK = "network.json"
_MAX_COUNT = 2**31 - 1  # columns, categories, classes: schema.json's own lists bound them
_NETWORK_KEYS = {"num_numeric", "cardinalities", "hidden_sizes", "dropout", "outputs"}


def write_model_dir(out: Path, schema: Schema, network_config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / SCHEMA).write_text(json.dumps(schema.to_dict(), indent=1) + "\n")
    (out / NETWORK).write_text(json.dumps(network_config, indent=1) + "\n")


def read_schema(model_dir: Path) -> Schema:
    return Schema.from_dict(read_json(model_dir / SCHEMA, expect=dict))


def read_network_config(model_dir: Path, schema: Schema | None = None) -> dict[str, Any]:
    """network.json, every value checked, and checked against schema.json: the network
    must take the schema's columns (each category's index within its embedding) and give
    one output per class, or one value."""
    config = read_json(model_dir / NETWORK, expect=dict)
    if set(config) != _NETWORK_KEYS:
        raise UserError(f"model directory is corrupt: {NETWORK} has other keys than expected")
    schema = schema or read_schema(model_dir)
    fits = f"{NETWORK} does not match {SCHEMA}:"
    num_numeric = check_int(config["num_numeric"], f"{NETWORK}: num_numeric", 0, _MAX_COUNT)
    if num_numeric != len(schema.numeric):
        raise corrupt(fits, f"num_numeric is {num_numeric}; {SCHEMA} has {len(schema.numeric)}")
    cardinalities = check_list(config["cardinalities"], f"{NETWORK}: cardinalities")
    for i, c in enumerate(cardinalities):
        check_int(c, f"{NETWORK}: cardinalities[{i}]", 1, _MAX_COUNT)
    expected = [c.cardinality for c in schema.categorical]
    if cardinalities != expected:
        raise corrupt(fits, f"cardinalities are {shown(cardinalities)}, expected {expected}")
    hidden = check_list(config["hidden_sizes"], f"{NETWORK}: hidden_sizes")
    for i, size in enumerate(hidden):
        check_int(size, f"{NETWORK}: hidden_sizes[{i}]", 1, MAX_WIDTH)
    check_number(config["dropout"], f"{NETWORK}: dropout", 0.0, 1.0)
    outputs = check_int(config["outputs"], f"{NETWORK}: outputs", 1, _MAX_COUNT)
    classes = len(schema.labels) if schema.task == CLASSIFICATION else 1
    if outputs != classes:
        raise corrupt(fits, f"outputs is {outputs}, expected {classes}")
    return config


def load_network(model_dir: Path, schema: Schema):
    """The plain TabularNet with its trained weights (weights-only load, no Lightning).
    Built on the meta device, so that no layer takes memory before the weights arrive:
    a network.json of another shape than model.ckpt fails on the first mismatch, without
    allocating what it describes."""
    import torch

    from .network import TabularNet

    with torch.device("meta"):
        net = TabularNet.from_config(read_network_config(model_dir, schema))
    try:
        net.load_state_dict(load_state_dict(model_dir, prefix="network."), assign=True)
    except RuntimeError as exc:
        raise UserError(f"{CHECKPOINT} does not fit {NETWORK}: {str(exc).splitlines()[0]}") from exc
    return net.eval()
