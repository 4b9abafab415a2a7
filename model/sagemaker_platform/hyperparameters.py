"""hyperparameters.json: the platform's settings and the chosen plug-in's, in one parse.

The `model` key picks the plug-in (default `text_classifier`); every other key belongs
either to `TrainSettings` or to the plug-in's `Hyperparameters`. An unknown key names the
keys of both; keys SageMaker adds (`sagemaker_*`, `_tuning_objective_metric`) pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import contract, logs, registry
from .config import ConfigError, TrainSettings, field_names, is_reserved, parse_fields
from .plugin import Plugin


@dataclass(frozen=True)
class JobConfig:
    """A training job's configuration, parsed and checked."""

    settings: TrainSettings
    plugin: Plugin
    hp: Any  # the plug-in's Hyperparameters
    reserved: dict[str, str] = field(default_factory=dict)  # SageMaker's own keys

    def log_values(self) -> dict[str, Any]:
        return {**asdict(self.settings), **asdict(self.hp)}

    @property
    def tuning_objective(self) -> str | None:
        """The objective metric when this job is a trial of a hyperparameter tuning job."""
        return self.reserved.get(contract.TUNING_OBJECTIVE_KEY) or None


def check_names(plugin: Plugin) -> None:
    """A plug-in's hyperparameter may not take a name of the platform's."""
    clash = sorted(field_names(plugin.Hyperparameters) & field_names(TrainSettings))
    if clash:
        raise ConfigError(
            f"plug-in {plugin.name!r} declares hyperparameter {clash[0]!r}, which the "
            "platform already has; rename it"
        )


# At or above what SageMaker accepts in CreateTrainingJob (names of 256 characters,
# values of 2,500: launcher/params.py); a local or hand-made hyperparameters.json past
# them gets a reason instead of an OS error from deep inside.
MAX_KEY_LENGTH, MAX_VALUE_LENGTH = 256, 4096


def _check_lengths(raw: Mapping[str, str]) -> None:
    for key, value in raw.items():
        if len(key) > MAX_KEY_LENGTH:
            raise ConfigError(
                f"hyperparameter name '{logs.key(key[:40])}'... is {len(key)} characters long; "
                f"at most {MAX_KEY_LENGTH}"
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise ConfigError(
                f"hyperparameter '{logs.key(key)}' is {len(value)} characters long; "
                f"at most {MAX_VALUE_LENGTH}"
            )


def parse(raw: Mapping[str, str]) -> JobConfig:
    _check_lengths(raw)
    reserved = {k: v for k, v in raw.items() if is_reserved(k)}
    ours = {k: v for k, v in raw.items() if not is_reserved(k)}
    name = parse_fields(TrainSettings, {"model": ours["model"]}).model if "model" in ours else None
    plugin = registry.load(name or TrainSettings.model)
    check_names(plugin)
    platform_keys = field_names(TrainSettings)
    plugin_keys = field_names(plugin.Hyperparameters)
    unknown = sorted(set(ours) - platform_keys - plugin_keys)
    if unknown:
        raise ConfigError(
            f"unknown hyperparameter '{logs.key(unknown[0])}' for model={plugin.name}; known: "
            + ", ".join(sorted(platform_keys | plugin_keys))
        )
    settings = parse_fields(TrainSettings, {k: v for k, v in ours.items() if k in platform_keys})
    hp = parse_fields(plugin.Hyperparameters, {k: v for k, v in ours.items() if k in plugin_keys})
    return JobConfig(settings, plugin, hp, reserved)


def defaults(plugin: Plugin) -> dict[str, Any]:
    """Every hyperparameter of `plugin` with its default (platform's first)."""
    out = {f.name: f.default for f in fields(TrainSettings)}
    out.update({f.name: f.default for f in fields(plugin.Hyperparameters)})
    return out
