"""Typed values in, SageMaker's strings out, checked by the image's own parsers first.

SageMaker hands the container hyperparameters and environment variables as strings. The
launcher takes them typed (`{"epochs": 3, "class_weighting": False}`), writes them as
strings, and parses those strings with the very functions the container will run
(`sagemaker_platform.hyperparameters`, the platform's and the chosen plug-in's), so a
typo or an out-of-range value fails here, on the
laptop, instead of minutes later on a paid instance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sagemaker_platform import contract
from sagemaker_platform.config import ConfigError, ServeConfig, serve_config_from_env
from sagemaker_platform.errors import UserError
from sagemaker_platform.hyperparameters import parse as parse_hyperparameters
from sagemaker_platform.serving import MAX_CPU_WORKERS

from .settings import LauncherError


def as_string(key: str, value: Any) -> str:
    """One value as SageMaker will hand it over: bools lower-case, floats round-trip."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that float() reads back exactly
    raise LauncherError(
        f"{key}={value!r}: a {type(value).__name__} cannot be sent; use a string, number or bool"
    )


# --- hyperparameters ---------------------------------------------------------------------
def hyperparameter_strings(values: Mapping[str, Any] | None) -> dict[str, str]:
    """hyperparameters.json as SageMaker will write it, validated by the training parser
    (the `model` key picks the plug-in whose hyperparameters are checked). Only the keys
    given are sent, so the image's own defaults stay in charge of everything else.
    """
    if values is None:
        return {}
    strings = {str(key): as_string(str(key), value) for key, value in values.items()}
    check_hyperparameter_sizes(strings)
    try:
        parse_hyperparameters(strings)
    except UserError as exc:  # ConfigError, or an unknown plug-in
        raise LauncherError(f"hyperparameters: {exc}") from None
    return dict(sorted(strings.items()))


# CreateTrainingJob.HyperParameters (and a tuning job's StaticHyperParameters): at most
# 100, names up to 256 characters, values up to 2500.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_NAME = 256
MAX_HYPERPARAMETER_VALUE = 2500


def check_hyperparameter_sizes(strings: Mapping[str, str]) -> None:
    """LauncherError naming the first hyperparameter SageMaker would refuse for its size."""
    if len(strings) > MAX_HYPERPARAMETERS:
        raise LauncherError(
            f"{len(strings)} hyperparameters: a training job takes at most {MAX_HYPERPARAMETERS}"
        )
    for key, value in strings.items():
        if len(key) > MAX_HYPERPARAMETER_NAME:
            raise LauncherError(
                f"hyperparameter name {key[:40]!r}...: {len(key)} characters, at most "
                f"{MAX_HYPERPARAMETER_NAME}"
            )
        if len(value) > MAX_HYPERPARAMETER_VALUE:
            raise LauncherError(
                f"hyperparameter {key}: a value of {len(value)} characters, SageMaker takes "
                f"at most {MAX_HYPERPARAMETER_VALUE}"
            )


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """`["epochs=3", "pooling=cls"]` (repeated CLI flags) as a dict; the last one wins."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LauncherError(f"{what} {pair!r}: expected KEY=VALUE")
        result[key.strip()] = value
    return result


# --- serving environment -----------------------------------------------------------------
# SageMaker sets this itself in a multi-model endpoint's container (the launcher never
# does): a model that set it would make a single-model container believe it hosts many.
SAGEMAKER_MULTI_MODEL_ENV = contract.SAGEMAKER_MULTI_MODEL_ENV
# Variables SageMaker itself sets in the serving container; a model must not set them.
_SET_BY_SAGEMAKER = (
    contract.BIND_TO_PORT_ENV,
    contract.SAFE_PORT_RANGE_ENV,
    contract.BATCH_ENV,
    contract.BATCH_STRATEGY_ENV,
    contract.MAX_CONCURRENT_TRANSFORMS_ENV,
    SAGEMAKER_MULTI_MODEL_ENV,
)


# The endpoint mode (realtime, async, serverless), from which the container takes its
# limits: body size, timeouts, workers. `deploy --mode` sets it, so it is no knob of its own.
MODE_ENV = contract.MODE_ENV
# Multi-model mode: `serve` starts with no model and loads each on SageMaker's POST /models.
# `deploy --multi-model` sets it (the serving side reads this name), never `--env`.
MULTI_MODEL_ENV = contract.MULTI_MODEL_ENV
_SET_BY_LAUNCHER = (MODE_ENV, MULTI_MODEL_ENV)


def serving_knobs() -> dict[str, str]:
    """{ServeConfig field: environment variable} for the settings a user may choose."""
    return {
        f.name: f.metadata["env"]
        for f in fields(ServeConfig)
        if f.metadata["env"] not in _SET_BY_SAGEMAKER + _SET_BY_LAUNCHER
    }


# A model's Environment (CreateModel): names as a shell spells them, values up to 1 KiB,
# at most 100 variables.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
MAX_ENV_VALUE = 1024
MAX_ENVIRONMENT = 100


def check_environment_name(name: Any) -> str:
    """`name` if SageMaker takes it as an environment variable's name; LauncherError else."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise LauncherError(
            f"environment variable name {name!r}: letters, digits and underscores, not "
            "starting with a digit"
        )
    return name


def check_environment_value(name: str, value: Any) -> str:
    text = as_string(name, value)
    if len(text) > MAX_ENV_VALUE:
        raise LauncherError(
            f"{name}: {len(text)} characters, a value takes at most {MAX_ENV_VALUE}"
        )
    return text


def serving_variables() -> dict[str, str]:
    """{variable: what sets it} for every serving variable the image reads: the
    platform's (ServeConfig) and each shipped plug-in's own (`Plugin.ServeSettings`)."""
    from sagemaker_platform import registry

    names = {f.metadata["env"]: f"serving setting {f.name}" for f in fields(ServeConfig)}
    for plugin_name in registry.available():
        settings = registry.load(plugin_name).ServeSettings
        for f in fields(settings) if settings is not None else ():
            if f.metadata.get("env"):
                names.setdefault(f.metadata["env"], f"model={plugin_name}'s {f.name}")
    return names


# How alike a name must be to one of the image's to be taken for a typo of it: close
# enough for a letter left out, doubled or swapped (MODEL_SERVER_WORKRS, 0.97), not for
# another word in the same namespace (MODEL_SERVER_TOKENIZER, 0.81).
_TYPO_SIMILARITY = 0.88


def check_not_a_misspelling(name: str) -> str:
    """`name`, unless it looks like a misspelt serving variable of the image (close to
    one, or holding one inside a longer name): LauncherError with a "did you mean". Any
    other name is a variable of the user's own, passed as it is."""
    import difflib

    known = serving_variables()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=1, cutoff=_TYPO_SIMILARITY)
    inside = [k for k in known if k in name]
    match = (close or sorted(inside, key=len, reverse=True) or [None])[0]
    if match is not None:
        raise LauncherError(
            f"environment variable {name}: the image reads no such variable; did you mean "
            f"{match} ({known[match]})?"
        )
    return name


def serving_environment(
    knobs: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    sagemaker_sets: tuple[str, ...] = (),
    mode: str | None = None,
    multi_model: bool = False,
) -> dict[str, str]:
    """The model's Environment: knobs by field name (`workers=2`) plus raw variables.

    The result is parsed with `serve_config_from_env`, exactly as the server will parse
    it at start-up. `sagemaker_sets` names further variables that SageMaker fills in for
    this kind of job (batch transform sets the payload limit from MaxPayloadInMB). An
    endpoint's `mode` goes in as MODEL_SERVER_MODE, and `multi_model` as
    MODEL_SERVER_MULTI_MODEL=true.
    """
    known = serving_knobs()
    reserved = set(_SET_BY_SAGEMAKER) | set(sagemaker_sets)
    result: dict[str, str] = {}
    for name, value in (knobs or {}).items():
        if name not in known:
            raise LauncherError(
                f"unknown serving setting {name!r}; known: {', '.join(sorted(known))}"
            )
        if value is not None:
            result[known[name]] = as_string(name, value)
    for key, value in (env or {}).items():
        if key in result and result[key] != str(value):
            raise LauncherError(f"{key} is given twice, as {result[key]!r} and {value!r}")
        check_not_a_misspelling(check_environment_name(key))
        result[key] = check_environment_value(key, value)
    clash = sorted(reserved & set(result))
    if clash:
        hint = " (use the max payload option)" if contract.MAX_PAYLOAD_ENV in clash else ""
        raise LauncherError(
            f"{', '.join(clash)}: set by SageMaker itself for this kind of job{hint}"
        )
    if MODE_ENV in result:
        raise LauncherError(f"{MODE_ENV}: set from the endpoint's mode (--mode, mode=)")
    if MULTI_MODEL_ENV in result:
        raise LauncherError(
            f"{MULTI_MODEL_ENV}: set by a multi-model deploy (--multi-model, multi_model=True)"
        )
    if mode is not None:
        result[MODE_ENV] = mode
    if multi_model:
        result[MULTI_MODEL_ENV] = "true"
    if len(result) > MAX_ENVIRONMENT:
        ours = [n for n, on in ((MODE_ENV, mode is not None), (MULTI_MODEL_ENV, multi_model)) if on]
        extra = f" (with {' and '.join(ours)}, which deploy sets)" if ours else ""
        raise LauncherError(
            f"{len(result)} environment variables{extra}: a model takes at most {MAX_ENVIRONMENT}"
        )
    try:
        serve_config_from_env(result)
    except ConfigError as exc:
        raise LauncherError(f"serving settings: {exc}") from None
    return dict(sorted(result.items()))


# --- batch transform limits ----------------------------------------------------------------
# CreateTransformJob spells the strategy in CamelCase; /execution-parameters and the
# SAGEMAKER_BATCH_STRATEGY variable use the upper-case form that ServeConfig parses.
_API_BATCH_STRATEGY = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}
# CreateTransformJob: MaxPayloadInMB <= 100 and MaxConcurrentTransforms * MaxPayloadInMB
# <= 100 (the API reference for MaxPayloadInMB).
TRANSFORM_PAYLOAD_LIMIT_MB = 100


@dataclass(frozen=True)
class TransformLimits:
    """The three values GET /execution-parameters reports, set explicitly on the job."""

    max_concurrent_transforms: int
    batch_strategy: str  # MULTI_RECORD or SINGLE_RECORD, as the container reports it
    max_payload_in_mb: int

    @property
    def api_batch_strategy(self) -> str:
        return _API_BATCH_STRATEGY[self.batch_strategy]


def transform_limits(
    instance_type: str,
    environment: Mapping[str, str],
    *,
    region: str,
    max_concurrent_transforms: int | None = None,
    max_payload_mb: int | None = None,
    batch_strategy: str = "MULTI_RECORD",
) -> TransformLimits:
    """Limits that match what the server will report on `instance_type`.

    The server runs MODEL_SERVER_WORKERS workers, or one per GPU, or on CPU one per
    core up to 4, and takes one request per worker at a time; MaxConcurrentTransforms
    follows the same rule unless given. MaxPayloadInMB defaults to the server's own
    default (6).
    """
    serve = serve_config_from_env(environment)
    if batch_strategy not in _API_BATCH_STRATEGY:
        raise LauncherError(
            f"batch strategy {batch_strategy!r}: expected {' or '.join(_API_BATCH_STRATEGY)}"
        )
    if max_concurrent_transforms is None:
        max_concurrent_transforms = (
            serve.workers or gpu_count(instance_type, region) or cpu_workers(instance_type)
        )
    if max_payload_mb is None:
        max_payload_mb = int(ServeConfig().max_payload_mb)
    if isinstance(max_payload_mb, bool) or not isinstance(max_payload_mb, int):
        raise LauncherError(f"max payload {max_payload_mb!r}: expected a whole number of MB")
    if not 1 <= max_payload_mb <= TRANSFORM_PAYLOAD_LIMIT_MB:
        raise LauncherError(
            f"max payload {max_payload_mb} MB: expected 1 to {TRANSFORM_PAYLOAD_LIMIT_MB}"
        )
    if max_concurrent_transforms < 1:
        raise LauncherError(
            f"max concurrent transforms {max_concurrent_transforms}: expected at least 1"
        )
    if max_concurrent_transforms * max_payload_mb > TRANSFORM_PAYLOAD_LIMIT_MB:
        raise LauncherError(
            f"max concurrent transforms ({max_concurrent_transforms}) x max payload "
            f"({max_payload_mb} MB) is over SageMaker's {TRANSFORM_PAYLOAD_LIMIT_MB} MB per "
            "instance: lower one of them"
        )
    return TransformLimits(max_concurrent_transforms, batch_strategy, max_payload_mb)


def cpu_workers(instance_type: str) -> int:
    """The server's CPU workers on `instance_type`: one per vCPU, at most MAX_CPU_WORKERS.
    SageMaker's sizes have 2 vCPUs up to `large` and 4 or more from `xlarge`."""
    size = instance_type.rsplit(".", 1)[-1]
    vcpus = 4 if size.endswith("xlarge") else 2 if size in ("medium", "large") else 1
    return min(vcpus, MAX_CPU_WORKERS)


def gpu_count(instance_type: str, region: str) -> int:
    """GPUs of an instance type from the SageMaker SDK's table; 0 if it does not list it."""
    from sagemaker.core import instance_types_gpu_info

    info = instance_types_gpu_info.retrieve(region).get(instance_type) or {}
    return int(info.get("Count", 0))
