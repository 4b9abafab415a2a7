"""Metric definitions for the `name=value` lines training prints.

Training logs one line per epoch through `sagemaker_platform.logs.kv`, e.g.

    epoch=2 train_loss=0.4100 val_loss=0.3800 val_accuracy=0.8600 val_f1=0.8300 train_samples_per_sec=45.12

with small floats in scientific form (`1.000e-04`). SageMaker scans the job's log for
each definition's regex and charts the first group as a CloudWatch metric. `\\b` keeps
`epoch=` from matching inside `best_epoch=` on the final summary line.
"""

from __future__ import annotations

import json

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
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def regex(name: str) -> str:
    return rf"\b{name}={NUMBER}"


def metric_definitions(model: str | None = None) -> list[dict[str, str]]:
    """[{"Name": ..., "Regex": ...}], the shape of AlgorithmSpecification.MetricDefinitions,
    for plug-in `model` (every shipped plug-in's metrics when None)."""
    return [{"Name": name, "Regex": regex(name)} for name in metric_names(model)]


def as_json(model: str | None = None) -> str:
    """For a console-created job, or the SDK v2 Estimator's metric_definitions."""
    return json.dumps(metric_definitions(model), indent=2)


def as_markdown(model: str | None = None) -> str:
    """The README's table: one row per metric, the regex ready to paste into the console."""
    rows = ["| Metric name | Regex |", "| --- | --- |"]
    rows += [f"| `{d['Name']}` | `{d['Regex']}` |" for d in metric_definitions(model)]
    return "\n".join(rows)
