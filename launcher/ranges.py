"""Tuning ranges from the command line or Python, checked against the settings they name.

    learning_rate=1e-5:1e-3:log   continuous (float) or integer (int): MIN:MAX[:SCALE],
                                   SCALE one of auto, linear, log, reverse-log
    batch_size=16,32               categorical: the values, comma-separated (any type)
    pooling=mean,cls

Each range is checked, before any request, against the type, bounds and choices of the
hyperparameter it names (the platform's `TrainSettings` or the chosen plug-in's
`Hyperparameters`) with the container's own parser, and becomes one of ParameterRanges'
Integer, Continuous or Categorical entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sagemaker_platform import registry
from sagemaker_platform.config import ConfigError, TrainSettings, field_type, parse_fields

from .params import as_string
from .settings import LauncherError

SCALES = {
    "auto": "Auto",
    "linear": "Linear",
    "log": "Logarithmic",
    "reverse-log": "ReverseLogarithmic",
}
MAX_RANGES = 30  # hyperparameters one tuning job may search
MAX_VALUES = 30  # values of one categorical range
MAX_VALUE_LENGTH = 256  # ParameterValue: each value, and each bound, as text


@dataclass(frozen=True)
class Range:
    """One hyperparameter to search, as ParameterRanges takes it."""

    name: str
    kind: str  # Integer, Continuous or Categorical
    values: tuple[str, ...]  # (min, max), or the categories
    scaling: str = "Auto"

    def as_api(self) -> dict[str, Any]:
        if self.kind == "Categorical":
            return {"Name": self.name, "Values": list(self.values)}
        low, high = self.values
        return {"Name": self.name, "MinValue": low, "MaxValue": high, "ScalingType": self.scaling}


def parse_range_flags(flags: Sequence[str] | None) -> dict[str, str]:
    """`["learning_rate=1e-5:1e-3:log", ...]` (repeated --range) as {name: spec}."""
    ranges: dict[str, str] = {}
    for flag in flags or []:
        name, sep, spec = flag.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise LauncherError(f"--range {flag!r}: expected NAME=MIN:MAX[:SCALE] or NAME=A,B,...")
        if name.strip() in ranges:
            raise LauncherError(f"--range {name.strip()} is given twice")
        ranges[name.strip()] = spec.strip()
    return ranges


def check_ranges(
    ranges: Mapping[str, Any], static: Mapping[str, str], model: str
) -> tuple[Range, ...]:
    """Each range checked against the hyperparameter it names, for plug-in `model`."""
    if not ranges:
        raise LauncherError("nothing to tune: give at least one range (--range NAME=SPEC)")
    if len(ranges) > MAX_RANGES:
        raise LauncherError(f"{len(ranges)} ranges: a tuning job searches at most {MAX_RANGES}")
    plugin = registry.load(model)
    owners = {f.name: (TrainSettings, f) for f in fields(TrainSettings)}
    owners.update({f.name: (plugin.Hyperparameters, f) for f in fields(plugin.Hyperparameters)})
    checked = []
    for name, spec in ranges.items():
        if name not in owners:
            raise LauncherError(
                f"range {name!r}: no such hyperparameter for model={model}; known: "
                + ", ".join(sorted(n for n in owners if n != "model"))
            )
        if name == "model":
            raise LauncherError("range 'model': the plug-in cannot be tuned; tune one at a time")
        if name in static:
            raise LauncherError(f"{name} is both tuned (a range) and fixed (a hyperparameter)")
        owner, f = owners[name]
        checked.append(_check_range(name, spec, owner, field_type(f)))
    return tuple(checked)


def _check_range(name: str, spec: Any, owner: type, kind: str) -> Range:
    def parse(text: str) -> Any:
        try:
            return getattr(parse_fields(owner, {name: text}), name)
        except ConfigError as exc:
            raise LauncherError(f"range {name}: {exc}") from None

    if isinstance(spec, (list, tuple)):
        values = [as_string(name, v) for v in spec]
    elif isinstance(spec, str) and ":" in spec and "," not in spec and kind in ("int", "float"):
        return _numeric_range(name, spec, kind, parse)
    elif isinstance(spec, str):
        values = [v.strip() for v in spec.split(",")]
    else:
        raise LauncherError(
            f"range {name}: {spec!r} is neither MIN:MAX[:SCALE] nor a list of values"
        )
    parsed = [as_string(name, parse(v)) for v in values]
    if len(parsed) < 2:
        raise LauncherError(
            f"range {name}: one value ({parsed[0] if parsed else 'none'}); give two or more, "
            "or fix it with a hyperparameter instead"
            + (", or MIN:MAX for a range" if kind in ("int", "float") else "")
        )
    if len(set(parsed)) != len(parsed):
        raise LauncherError(f"range {name}: a value is listed twice ({', '.join(parsed)})")
    if len(parsed) > MAX_VALUES:
        raise LauncherError(f"range {name}: {len(parsed)} values; at most {MAX_VALUES}")
    for value in parsed:
        if len(value) > MAX_VALUE_LENGTH:
            raise LauncherError(
                f"range {name}: a value of {len(value)} characters ({value[:30]}...); a tuning "
                f"job takes at most {MAX_VALUE_LENGTH}"
            )
    return Range(name, "Categorical", tuple(parsed))


def _numeric_range(name: str, spec: str, kind: str, parse) -> Range:
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) not in (2, 3):
        raise LauncherError(f"range {name}={spec}: expected MIN:MAX or MIN:MAX:SCALE")
    scale = parts[2].lower() if len(parts) == 3 else "auto"
    if scale not in SCALES:
        raise LauncherError(
            f"range {name}={spec}: scale {scale!r}; expected one of {', '.join(SCALES)}"
        )
    low, high = parse(parts[0]), parse(parts[1])
    if not low < high:
        raise LauncherError(f"range {name}={spec}: the minimum must be below the maximum")
    if scale == "log" and low <= 0:
        raise LauncherError(f"range {name}={spec}: a log scale needs a minimum above 0")
    if scale == "reverse-log" and (kind != "float" or not (low >= 0 and high < 1)):
        raise LauncherError(
            f"range {name}={spec}: a reverse-log scale takes a float range within [0, 1)"
        )
    api_kind = "Integer" if kind == "int" else "Continuous"
    return Range(name, api_kind, (as_string(name, low), as_string(name, high)), SCALES[scale])
