"""Metric definitions for the `name=value` lines training prints.

Training logs one line per epoch through `sagemaker_platform.logs.kv`, after the log
line's own prefix (time, level, logger), e.g.

    2025-01-01T12:00:00 INFO train: epoch=2 train_loss=0.4100 val_loss=0.3800 val_f1=0.8300

with small floats in scientific form (`1.000e-04`). SageMaker scans the job's log for
each definition's regex and charts its first group as a CloudWatch metric.

The regexes use only what POSIX extended regular expressions, Java's java.util.regex and
Python's `re` read alike, since SageMaker does not say which engine it runs: literal
characters, bracket expressions without backslashes, `\\.`, `?`, `*`, `+`, `|` and one
group, which holds the value (so it is the first group whichever way groups are counted).
No `\\b`, `\\d`, `(?:...)` or lazy quantifiers. The character before the name must be
one no name contains (`[^A-Za-z0-9_]`, a space in the platform's lines), so `epoch=`
does not match inside `best_epoch=` on the final summary line; a metric at the very
start of a line is not read, and the platform's never is (the prefix comes first).
tests/integration/test_metric_regex_dialects.py reads the same values from real log
lines with all three engines.
"""

from __future__ import annotations

import json

from .settings import LauncherError

# The names the platform prints for every plug-in; each plug-in adds the `val_*` metrics
# it logs (`Plugin.metrics`). Each becomes a metric of the same name.
PLATFORM_NAMES = ("epoch", "train_loss", "train_samples_per_sec")


def metric_names(model: str | None = None) -> tuple[str, ...]:
    """The platform's names, then plug-in `model`'s (every shipped plug-in's when None)."""
    from sagemaker_platform import registry

    plugins = [model] if model else registry.available()
    names = list(PLATFORM_NAMES)
    for name in plugins:
        names += [m for m in registry.load(name).metrics if m not in names]
    return tuple(names)


# Names that are counters, not measures of a model: never a tuning objective.
NOT_OBJECTIVES = ("epoch",)
# Metrics that are better lower (the rest are better higher: accuracy, F1, throughput).
_LOWER_IS_BETTER = ("loss", "rmse", "mae", "mse", "error")


def objective_names(model: str | None = None) -> tuple[str, ...]:
    """The metrics a tuning job may optimise for plug-in `model`."""
    return tuple(n for n in metric_names(model) if n not in NOT_OBJECTIVES)


def direction(name: str) -> str:
    """Minimize or Maximize: the way metric `name` gets better."""
    return "Minimize" if name.endswith(_LOWER_IS_BETTER) else "Maximize"


# A decimal or scientific number: 3, 0.8300, 45.12, 1.000e-04, -0.5.
# The exponent's form first: Python takes the first alternative that matches, POSIX the
# longest; both then hold the whole number.
_DECIMAL = r"[-+]?[0-9]*\.?[0-9]+"
NUMBER = rf"({_DECIMAL}[eE][-+]?[0-9]+|{_DECIMAL})"
# Not a name character: what comes before a name in a `name=value` line.
BEFORE_NAME = "[^A-Za-z0-9_]"
# Special outside a bracket expression in POSIX ERE, Java and Python: escaped with `\`.
_SPECIAL = set(".[\\()*+?{|^$")


def regex(name: str) -> str:
    """The definition's regex for metric `name`, as `logs.kv` prints the name."""
    from sagemaker_platform import logs

    literal = "".join(f"\\{c}" if c in _SPECIAL else c for c in logs.key(name))
    return f"{BEFORE_NAME}{literal}={NUMBER}"


# AlgorithmSpecification.MetricDefinitions: at most 40, names up to 255 characters,
# regexes up to 500.
MAX_DEFINITIONS = 40
MAX_NAME = 255
MAX_REGEX = 500


def metric_definitions(model: str | None = None) -> list[dict[str, str]]:
    """[{"Name": ..., "Regex": ...}], the shape of AlgorithmSpecification.MetricDefinitions,
    for plug-in `model` (every shipped plug-in's metrics when None). LauncherError when
    SageMaker would refuse them: too many, or a name too long."""
    definitions = [{"Name": name, "Regex": regex(name)} for name in metric_names(model)]
    whose = f"model={model}" if model else "the shipped plug-ins"
    if len(definitions) > MAX_DEFINITIONS:
        raise LauncherError(
            f"{whose} logs {len(definitions)} metrics with the platform's: SageMaker charts "
            f"at most {MAX_DEFINITIONS} per job (Plugin.metrics)"
        )
    for d in definitions:
        if len(d["Name"]) > MAX_NAME or len(d["Regex"]) > MAX_REGEX:
            raise LauncherError(
                f"{whose}: metric name {d['Name'][:40]!r}... is too long for SageMaker (names "
                f"up to {MAX_NAME} characters, their regexes up to {MAX_REGEX})"
            )
    return definitions


def as_json(model: str | None = None) -> str:
    """For a console-created job, or the SDK v2 Estimator's metric_definitions."""
    return json.dumps(metric_definitions(model), indent=2)


def as_markdown(model: str | None = None) -> str:
    """The docs' table: one row per metric, the regex ready to paste into the console. A
    table cell spells the regex's `|` as `\\|` (GitHub shows `|`, even in code)."""
    rows = ["| Metric name | Regex |", "| --- | --- |"]
    rows += [
        f"| `{d['Name']}` | `{d['Regex'].replace('|', chr(92) + '|')}` |"
        for d in metric_definitions(model)
    ]
    return "\n".join(rows)
