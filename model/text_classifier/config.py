"""Typed configuration, parsed once at the edge from strings.

SageMaker hands hyperparameters over as strings (`"epochs": "3"`) and serving settings as
environment variables. Both are parsed here into frozen dataclasses; an unknown key or a
bad value raises `ConfigError` naming the key and what it accepts, before anything heavy
(torch, Lightning, a model) is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from . import contract
from .errors import UserError


class ConfigError(UserError):
    """A hyperparameter or environment variable with a bad name or value."""


def _opt(default: Any, help: str, *, choices: tuple[str, ...] = (), lo=None, hi=None, env=None):
    """A config field with its documentation and bounds kept beside it."""
    meta = {"help": help, "choices": choices, "min": lo, "max": hi, "env": env}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters. Each field is a key of hyperparameters.json."""

    # data
    text_column: str = _opt("text", "column holding the text")
    label_column: str = _opt("label", "column holding the label (strings or integers)")
    validation_fraction: float = _opt(
        0.2, "share of train held out when there is no validation channel", lo=0.0, hi=0.9
    )
    # model
    backbone: str = _opt(
        "default",
        "Hugging Face model folder, an earlier job's model directory, or hub id; 'default' is "
        "the packaged MiniLM",
    )
    pooling: str = _opt("mean", "how token vectors become one vector", choices=("mean", "cls"))
    dropout: float = _opt(0.1, "dropout before the classification head", lo=0.0, hi=0.9)
    max_length: int = _opt(256, "tokens kept per text (longer texts are truncated)", lo=8, hi=4096)
    # optimisation
    epochs: int = _opt(6, "passes over the training data", lo=1, hi=10_000)
    batch_size: int = _opt(16, "texts per training step and device", lo=1, hi=65_536)
    learning_rate: float = _opt(1e-4, "peak AdamW learning rate", lo=0.0, hi=1.0)
    head_learning_rate: float = _opt(
        1e-3, "learning rate of the freshly initialised head", lo=0.0, hi=1.0
    )
    weight_decay: float = _opt(0.01, "AdamW weight decay", lo=0.0, hi=1.0)
    warmup_ratio: float = _opt(
        0.1, "share of steps with a linear warm-up, then linear decay", lo=0.0, hi=1.0
    )
    gradient_accumulation: int = _opt(1, "batches summed per optimiser step", lo=1, hi=1024)
    group_by_length: bool = _opt(
        True, "batch texts of similar length together (less padding), in shuffled order"
    )
    class_weighting: bool = _opt(True, "weigh the loss by inverse class frequency")
    early_stopping_patience: int = _opt(
        2, "epochs without val_f1 improvement before stopping; 0 turns it off", lo=0, hi=10_000
    )
    seed: int = _opt(42, "seed for the split, initialisation and shuffling", lo=0)
    # hardware
    precision: str = _opt(
        "auto",
        "numeric precision; auto is bf16-mixed on a GPU that has it, else 32",
        choices=("auto", "32", "32-true", "16-mixed", "bf16-mixed", "bf16-true"),
    )
    num_workers: int = _opt(0, "DataLoader worker processes", lo=0, hi=64)
    checkpoint_every_n_steps: int = _opt(
        0,
        "also rewrite the resumable checkpoints/last.ckpt every N optimizer steps (spot "
        "training); 0 saves it once per epoch",
        lo=0,
    )


@dataclass(frozen=True)
class ServeConfig:
    """Serving settings. Each field is an environment variable (see `env`)."""

    port: int = _opt(
        contract.DEFAULT_PORT,
        "port nginx listens on",
        lo=1,
        hi=65535,
        env=contract.BIND_TO_PORT_ENV,
    )
    workers: int = _opt(
        0,
        "gunicorn workers, each with its own copy of the model; 0 is one per GPU, or on CPU one per core (at most 4)",
        lo=0,
        hi=256,
        env=contract.WORKERS_ENV,
    )
    timeout: int = _opt(
        60,
        "seconds a request may take; a forward pass still running then gets 504 and its worker is replaced",
        lo=1,
        hi=3600,
        env=contract.TIMEOUT_ENV,
    )
    threads: int = _opt(
        0,
        "torch CPU threads per worker; 0 splits the cores evenly on a GPU host, and on CPU gives each worker its share of the cores among the workers computing at the time (all of them when it computes alone)",
        lo=0,
        hi=1024,
        env=contract.THREADS_ENV,
    )
    max_batch_size: int = _opt(
        32, "texts merged into one forward pass", lo=1, hi=4096, env=contract.MAX_BATCH_SIZE_ENV
    )
    max_batch_delay_ms: float = _opt(
        0.0,
        "how long a batch waits for more texts; 0 takes what queued while the last batch ran, and waits up to 5 ms for the clients that batch answered",
        lo=0.0,
        hi=10_000.0,
        env=contract.MAX_BATCH_DELAY_ENV,
    )
    precision: str = _opt(
        "auto",
        "inference precision; auto is bf16 where the CPU or GPU computes in it, else fp16 (GPU) or fp32",
        choices=("auto", "fp32", "bf16", "fp16", "int8"),
        env=contract.PRECISION_ENV,
    )
    device: str = _opt(
        "auto", "cuda, cpu, or auto", choices=("auto", "cuda", "cpu"), env=contract.DEVICE_ENV
    )
    backbone: str = _opt(
        "auto",
        "how the backbone runs; auto computes BERT-family encoders (BERT, MiniLM, RoBERTa, XLM-R) in plain torch, without importing transformers, and any other through transformers",
        choices=("auto", "transformers"),
        env=contract.BACKBONE_ENV,
    )
    max_payload_mb: float = _opt(
        6.0, "largest request body accepted", lo=0.0, hi=100.0, env=contract.MAX_PAYLOAD_ENV
    )
    batch_strategy: str = _opt(
        "MULTI_RECORD",
        "batch transform's strategy",
        choices=("SINGLE_RECORD", "MULTI_RECORD"),
        env=contract.BATCH_STRATEGY_ENV,
    )
    max_concurrent_transforms: int = _opt(
        0,
        "parallel requests per instance in batch transform; 0 is one per worker",
        lo=0,
        hi=1024,
        env=contract.MAX_CONCURRENT_TRANSFORMS_ENV,
    )


# --- parsing ---------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _describe(f) -> str:
    meta = f.metadata
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    if f.type == "bool":
        return "true or false"
    kind = {"int": "an integer", "float": "a number", "str": "a string"}[f.type]
    lo, hi = meta["min"], meta["max"]
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    return kind


def _parse_value(f, key: str, raw: str) -> Any:
    text = raw.strip()
    # SageMaker's SDK JSON-encodes strings in some paths ("\"mean\""): accept both forms.
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    meta = f.metadata
    try:
        if f.type == "bool":
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            value: Any = low in _TRUE
        elif f.type == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError
            value = int(number)
        elif f.type == "float":
            value = float(text)
            if value != value:  # NaN
                raise ValueError
        else:
            value = text
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not valid: expected {_describe(f)}") from None
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{key}={raw!r} is not valid: expected {_describe(f)}")
    if (meta["min"] is not None and value < meta["min"]) or (
        meta["max"] is not None and value > meta["max"]
    ):
        raise ConfigError(f"{key}={raw!r} is out of range: expected {_describe(f)}")
    return value


def parse_hyperparameters(raw: Mapping[str, str]) -> TrainConfig:
    """TrainConfig from hyperparameters.json's strings; unknown keys are errors."""
    by_name = {f.name: f for f in fields(TrainConfig)}
    # SageMaker adds its own sagemaker_* keys for some jobs; they are not ours to check.
    ours = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    unknown = sorted(set(ours) - set(by_name))
    if unknown:
        raise ConfigError(
            f"unknown hyperparameter {unknown[0]!r}; known: {', '.join(sorted(by_name))}"
        )
    values = {k: _parse_value(by_name[k], k, str(v)) for k, v in ours.items()}
    return TrainConfig(**values)


def serve_config_from_env(env: Mapping[str, str] | None = None) -> ServeConfig:
    """ServeConfig from the process environment; empty variables take the default."""
    env = os.environ if env is None else env
    values = {}
    for f in fields(ServeConfig):
        raw = env.get(f.metadata["env"], "")
        if raw.strip():
            values[f.name] = _parse_value(f, f.metadata["env"], raw)
    if "max_payload_mb" not in values and env.get(contract.BATCH_ENV, "").lower() == "true":
        values["max_payload_mb"] = 100.0  # batch transform's own limit
    return ServeConfig(**values)


def describe(cls) -> list[tuple[str, str, str]]:
    """(name, default, help) for every field: the README's tables come from this."""
    rows = []
    for f in fields(cls):
        default = "" if f.default is MISSING else str(f.default)
        name = f.metadata["env"] or f.name
        allowed = "" if f.type == "str" and not f.metadata["choices"] else f" ({_describe(f)})"
        rows.append((name, default, f.metadata["help"] + allowed))
    return rows
