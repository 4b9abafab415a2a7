"""Typed configuration, parsed once at the edge from strings.

SageMaker hands hyperparameters over as strings (`"epochs": "3"`) and serving settings as
environment variables. Both are parsed here into frozen dataclasses: the platform's
(`TrainSettings`, `ServeConfig`) and each plug-in's `Hyperparameters`, built with the same
`setting(...)` fields. An unknown key or a bad value raises `ConfigError` naming the key
and what it accepts, before anything heavy (torch, Lightning, a model) is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from . import contract, logs
from .errors import UserError


class ConfigError(UserError):
    """A hyperparameter or environment variable with a bad name or value."""


def setting(default: Any, help: str, *, choices: tuple[str, ...] = (), lo=None, hi=None, env=None):
    """A config field with its documentation and bounds kept beside it: every
    hyperparameter and serving variable, the platform's and each plug-in's, is one."""
    meta = {"help": help, "choices": choices, "min": lo, "max": hi, "env": env}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainSettings:
    """The platform's hyperparameters, the same for every plug-in. Each field is a key of
    hyperparameters.json; the plug-in's own `Hyperparameters` add theirs beside them."""

    model: str = setting(
        "text_classifier",
        "the plug-in that trains (a folder of model/plugins/, or a package on PYTHONPATH; either holds a SAGEMAKER_PLUGIN marker file)",
    )
    epochs: int = setting(6, "passes over the training data", lo=1, hi=10_000)
    batch_size: int = setting(16, "rows per training step and device", lo=1, hi=65_536)
    validation_fraction: float = setting(
        0.2, "share of train held out when there is no validation channel", lo=0.0, hi=0.9
    )
    gradient_accumulation: int = setting(1, "batches summed per optimiser step", lo=1, hi=1024)
    early_stopping_patience: int = setting(
        2,
        "epochs without improvement of the plug-in's validation metric before stopping; 0 "
        "turns it off",
        lo=0,
        hi=10_000,
    )
    seed: int = setting(42, "seed for the split, initialisation and shuffling", lo=0, hi=2**32 - 1)
    # hardware
    precision: str = setting(
        "auto",
        "numeric precision; auto is bf16-mixed on a GPU that has it, and on a CPU whose bf16 units (AVX512-BF16, AMX) measure faster than fp32 for the plug-ins that gain from it (text_classifier); else 32",
        choices=("auto", "32", "32-true", "16-mixed", "bf16-mixed", "bf16-true"),
    )
    num_workers: int = setting(0, "DataLoader worker processes", lo=0, hi=64)
    checkpoint_every_n_steps: int = setting(
        0,
        "also rewrite the resumable checkpoints/last.ckpt every N optimizer steps (spot "
        "training); 0 saves it once per epoch",
        lo=0,
    )
    # archives a channel holds (the pretrained channel's model.tar.gz)
    max_unpacked_gb: float = setting(
        100.0, "a channel's .tar.gz may expand to at most this much", lo=0.001, hi=10_000.0
    )
    max_unpacked_files: int = setting(
        100_000, "a channel's .tar.gz may hold at most this many files", lo=1, hi=10_000_000
    )


MODES = ("realtime", "async", "serverless")


@dataclass(frozen=True)
class ModeLimits:
    """What each kind of endpoint accepts by default: SageMaker's own limits for it."""

    payload_mb: float  # request body
    timeout: int  # seconds a request may take
    client_timeout: int  # seconds nginx waits on a silent client
    max_records: int  # per request: its time and memory grow with them, not with its bytes


# Real-time: InvokeEndpoint's 6 MB body and 60 s (ServeConfig's defaults). Serverless: 4 MB
# and 60 s. Async: 1 GB bodies (from S3) and InvocationTimeoutSeconds up to 3600 (the
# default of its own setting, async_timeout). Batch transform: MaxPayloadInMB at most 100,
# and InvocationsTimeoutInSeconds 600 by default.
# SageMaker's front end hands over a real-time body in well under a second, so a client
# silent for 10 s is gone; async and batch bodies are larger and come from S3.
# Records: 10,000 texts of ~80 tokens took 27.6 s in bf16 on 2 AMX cores but 70.6 s in
# fp32 (docs/results.md, "Serverless memory"): short texts fit a real-time minute, long
# ones in fp32 do not, and get a 504 while the worker serves on (`batching`). Async and
# batch transform requests are whole files (a 6 MB mini-batch of short lines holds
# 100,000), with their longer timeouts.
# A body's whole arrival, however steadily it trickles: SageMaker's front end hands over a
# real-time body in well under a second, and async and batch bodies come from S3 inside
# AWS, so 2 s plus 2 MB/s of the body limit costs real traffic nothing, while a client
# that trickles its body can hold a connection (of the 1,024 nginx lets through at once)
# only that long.
BODY_FLOOR_S = 2.0
BODY_S_PER_MB = 0.5
MODE_LIMITS = {
    "realtime": ModeLimits(payload_mb=6.0, timeout=60, client_timeout=10, max_records=10_000),
    "serverless": ModeLimits(payload_mb=4.0, timeout=60, client_timeout=10, max_records=10_000),
    "async": ModeLimits(payload_mb=1024.0, timeout=3600, client_timeout=60, max_records=100_000),
    "batch": ModeLimits(payload_mb=100.0, timeout=600, client_timeout=60, max_records=100_000),
}


@dataclass(frozen=True)
class ClusterSettings:
    """A training job's settings for several hosts (`distributed`): environment variables
    of the job (the launcher's `--env`), parsed once, each refused by name when bad."""

    master_port: int = setting(
        29500,
        "the port of the rendezvous on the first host in resourceconfig.json's hosts",
        lo=1,
        hi=65535,
        env=contract.MASTER_PORT_ENV,
    )
    # Long enough for hosts that finish downloading data or loading the backbone minutes
    # apart, short enough that a host whose peer died does not bill for hours.
    dist_timeout: int = setting(
        600,
        "seconds a host waits for the others to join, and for any collective, before it fails instead of hanging",
        lo=1,
        hi=86_400,
        env=contract.DIST_TIMEOUT_ENV,
    )
    host_addresses: str = setting(
        "",
        "host=address pairs, comma-separated (algo-1=10.0.0.5,algo-2=10.0.0.6), where SageMaker's DNS is not to resolve the hosts; empty, it does",
        env=contract.HOST_ADDRESSES_ENV,
    )


@dataclass(frozen=True)
class ServeConfig:
    """Serving settings. Each field is an environment variable (see `env`)."""

    port: int = setting(
        contract.DEFAULT_PORT,
        "port nginx listens on",
        lo=1,
        hi=65535,
        env=contract.BIND_TO_PORT_ENV,
    )
    endpoint_mode: str = setting(
        "realtime",
        "the kind of endpoint (the launcher's deploy --mode sets it); it chooses the body limit, timeout and workers by default (docs/serving.md: Endpoint modes). Batch transform is recognised by SAGEMAKER_BATCH whatever this says",
        choices=MODES,
        env=contract.MODE_ENV,
    )
    workers: int = setting(
        0,
        "gunicorn workers, each with its own copy of the model; 0 is one per GPU, or on CPU one per core (at most 4), and 1 on a serverless endpoint",
        lo=0,
        hi=256,
        env=contract.WORKERS_ENV,
    )
    timeout: int = setting(
        MODE_LIMITS["realtime"].timeout,
        "seconds a request may take on a real-time or serverless endpoint (600 by default under batch transform); a request still computing then gets 504 (its worker is replaced only if one forward pass has overrun it)",
        lo=1,
        hi=3600,
        env=contract.TIMEOUT_ENV,
    )
    async_timeout: int = setting(
        MODE_LIMITS["async"].timeout,
        "seconds a request may take on an async endpoint, in place of MODEL_SERVER_TIMEOUT (SageMaker's InvocationTimeoutSeconds is at most 3600)",
        lo=1,
        hi=3600,
        env=contract.ASYNC_TIMEOUT_ENV,
    )
    client_timeout: int = setting(
        MODE_LIMITS["realtime"].client_timeout,
        "seconds nginx waits for a client's next bytes (headers, body) or for it to take more of the answer, then closes the connection; unset, the mode's: 10 real-time and serverless, 60 async and batch transform",
        lo=1,
        hi=3600,
        env=contract.CLIENT_TIMEOUT_ENV,
    )
    threads: int = setting(
        0,
        "torch CPU threads per worker; 0 splits the cores evenly on a GPU host, and on CPU gives each worker its share of the cores among the workers computing at the time (all of them when it computes alone)",
        lo=0,
        hi=1024,
        env=contract.THREADS_ENV,
    )
    max_batch_size: int = setting(
        32, "records merged into one forward pass", lo=1, hi=4096, env=contract.MAX_BATCH_SIZE_ENV
    )
    max_records: int = setting(
        MODE_LIMITS["realtime"].max_records,
        "records one request may hold; more is a 413 (a request's time and memory grow with its records, and the body limit alone lets 6 MB hold 400,000 short texts); unset, the mode's: 10000 real-time and serverless, 100000 async and batch transform",
        lo=1,
        hi=1_000_000,
        env=contract.MAX_RECORDS_ENV,
    )
    max_batch_delay_ms: float = setting(
        0.0,
        "how long a batch waits for more texts; 0 takes what queued while the last batch ran, and waits up to 5 ms for the clients that batch answered",
        lo=0.0,
        hi=10_000.0,
        env=contract.MAX_BATCH_DELAY_ENV,
    )
    precision: str = setting(
        "auto",
        "inference precision; auto is bf16 on a GPU that has it and on a CPU whose bf16 units measure faster than fp32, else fp16 (GPU) or fp32",
        choices=("auto", "fp32", "bf16", "fp16", "int8"),
        env=contract.PRECISION_ENV,
    )
    device: str = setting(
        "auto",
        "cuda, cpu, or auto (a GPU if there is one; always the CPU on a serverless endpoint)",
        choices=("auto", "cuda", "cpu"),
        env=contract.DEVICE_ENV,
    )
    torchscript: bool = setting(
        True,
        "a plug-in may run its network through TorchScript, off Python's lock (the text classifier's layers on a CPU, fp32 and bf16: 1.1-1.2x, the same answers); false keeps Python's",
        env=contract.TORCHSCRIPT_ENV,
    )
    max_payload_mb: float = setting(
        MODE_LIMITS["realtime"].payload_mb,
        "largest request body accepted; unset, the mode's: 6 real-time, 4 serverless, 1024 async, 100 batch transform",
        lo=0.0,
        hi=1024.0,
        env=contract.MAX_PAYLOAD_ENV,
    )
    batch: bool = setting(
        False, "set by SageMaker in a batch transform job", env=contract.BATCH_ENV
    )
    batch_strategy: str = setting(
        "MULTI_RECORD",
        "batch transform's strategy",
        choices=("SINGLE_RECORD", "MULTI_RECORD"),
        env=contract.BATCH_STRATEGY_ENV,
    )
    max_concurrent_transforms: int = setting(
        0,
        "parallel requests per instance in batch transform; 0 is one per worker",
        lo=0,
        hi=1024,
        env=contract.MAX_CONCURRENT_TRANSFORMS_ENV,
    )
    multi_model: bool = setting(
        False,
        "a multi-model endpoint: serve starts with no model, and SageMaker loads, lists, invokes and unloads models through /models (docs/serving.md: Many models on one endpoint); SAGEMAKER_MULTI_MODEL=true means the same",
        env=contract.MULTI_MODEL_ENV,
    )
    sagemaker_multi_model: bool = setting(
        False,
        "set by SageMaker in a multi-model endpoint's containers: the same as MODEL_SERVER_MULTI_MODEL",
        env=contract.SAGEMAKER_MULTI_MODEL_ENV,
    )
    max_inflight_mb: float = setting(
        0.0,
        "request bodies one worker may hold at once (each costs about five times its size until answered); past it a request is a 429, though a worker holding none takes any; 0 is half the container's memory over the workers, divided by five",
        lo=0.0,
        hi=10_000_000.0,
        env=contract.MAX_INFLIGHT_ENV,
    )
    mme_memory_mb: int = setting(
        0,
        "on a multi-model endpoint, the memory its loaded models may take in all, every worker's copy counted; a load that would pass it is a 507 (SageMaker then unloads the least recently used models and retries); 0 is 85% of the container's memory less 512 MB per worker",
        lo=0,
        hi=100_000_000,
        env=contract.MME_MEMORY_ENV,
    )

    @property
    def body_timeout(self) -> float:
        """Seconds a request's whole body may take to arrive: BODY_FLOOR_S plus
        BODY_S_PER_MB for each MB of the body limit (5 s real-time, 4 serverless, 52 batch
        transform, 514 async, at their default limits)."""
        return BODY_FLOOR_S + BODY_S_PER_MB * self.max_payload_mb

    @property
    def mme(self) -> bool:
        """A multi-model endpoint: MODEL_SERVER_MULTI_MODEL or SageMaker's own signal."""
        return self.multi_model or self.sagemaker_multi_model

    @property
    def kind(self) -> str:
        """realtime, async, serverless or batch: what the defaults were chosen for."""
        return "batch" if self.batch else self.endpoint_mode


# --- parsing ---------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _type(f) -> str:
    """ "int", "float", "bool" or "str", whether or not the dataclass's module postpones
    its annotations. A type without a name (`int | None`) is spelt as its module would
    have postponed it, and refused the same way."""
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
    if kind not in ("int", "float", "bool", "str"):
        raise TypeError(f"setting {f.name!r} has type {kind}; use int, float, bool or str")
    return kind


def _describe(f) -> str:
    meta = f.metadata
    if meta["choices"]:
        return "one of " + ", ".join(meta["choices"])
    if _type(f) == "bool":
        return "true or false"
    kind = {"int": "an integer", "float": "a number", "str": "a string"}[_type(f)]
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
    kind = _type(f)
    try:
        if kind == "bool":
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            value: Any = low in _TRUE
        elif kind == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError
            value = int(number)
        elif kind == "float":
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


def is_reserved(key: str) -> bool:
    """Keys SageMaker and its SDKs add (`sagemaker_program`, a tuning job's
    `_tuning_objective_metric`): accepted and logged, never checked as ours."""
    return key.startswith(("sagemaker_", "_"))


def parse_fields(cls, raw: Mapping[str, str], what: str = "hyperparameter"):
    """An instance of the dataclass `cls` from strings; unknown keys are errors."""
    by_name = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(by_name))
    if unknown:
        raise ConfigError(
            f"unknown {what} '{logs.key(unknown[0])}'; known: {', '.join(sorted(by_name))}"
        )
    return cls(**{k: _parse_value(by_name[k], k, str(v)) for k, v in raw.items()})


def field_type(f) -> str:
    """ "int", "float", "bool" or "str": what a setting's strings parse to."""
    return _type(f)


def field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def parse_env(cls, env: Mapping[str, str] | None = None):
    """An instance of the dataclass `cls` whose fields name their variable (`env=`);
    empty variables take the default."""
    env = os.environ if env is None else env
    values = {}
    for f in fields(cls):
        raw = env.get(f.metadata["env"], "")
        if raw.strip():
            values[f.name] = _parse_value(f, f.metadata["env"], raw)
    return cls(**values)


def serve_config_from_env(env: Mapping[str, str] | None = None) -> ServeConfig:
    """ServeConfig from the process environment; empty variables take the default, and
    the settings the endpoint's kind decides (`MODE_LIMITS`) take that kind's unless set.
    The result holds the values in force: `timeout` is the async one on an async
    endpoint, and a serverless endpoint runs one worker on the CPU."""
    env = os.environ if env is None else env
    cfg = parse_env(ServeConfig, env)
    limits = MODE_LIMITS[cfg.kind]

    def unset(name: str) -> bool:
        return not env.get(name, "").strip()

    changes: dict[str, Any] = {}
    if unset(contract.MAX_PAYLOAD_ENV):
        changes["max_payload_mb"] = limits.payload_mb
    if cfg.kind == "async":
        changes["timeout"] = cfg.async_timeout
    elif unset(contract.TIMEOUT_ENV):
        changes["timeout"] = limits.timeout
    if unset(contract.CLIENT_TIMEOUT_ENV):
        changes["client_timeout"] = limits.client_timeout
    if unset(contract.MAX_RECORDS_ENV):
        changes["max_records"] = limits.max_records
    if cfg.kind == "serverless":
        # No GPU there, and memory is what a serverless endpoint is billed by: one copy
        # of the model.
        if cfg.device == "cuda":
            raise ConfigError(
                f"{contract.DEVICE_ENV}=cuda is not valid: a serverless endpoint has no GPU"
            )
        changes["device"] = "cpu"
        if unset(contract.WORKERS_ENV):
            changes["workers"] = 1
    return replace(cfg, **changes)


def describe(cls) -> list[tuple[str, str, str]]:
    """(name, default, help) for every field: the docs' tables come from this (make readme)."""
    rows = []
    for f in fields(cls):
        default = "" if f.default is MISSING else str(f.default)
        name = f.metadata["env"] or f.name
        allowed = "" if _type(f) == "str" and not f.metadata["choices"] else f" ({_describe(f)})"
        rows.append((name, default, f.metadata["help"] + allowed))
    return rows
