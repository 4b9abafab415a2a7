"""Metric definitions for the `name=value` lines training prints.

Training logs one line per epoch through `sagemaker_platform.logs.kv`, e.g.

    epoch=2 train_loss=0.4100 val_loss=0.3800 val_accuracy=0.8600 val_f1=0.8300 train_samples_per_sec=45.12

with small floats in scientific form (`1.000e-04`). SageMaker scans the job's log for
each definition's regex and charts the first group as a CloudWatch metric. `\\b` keeps
`epoch=` from matching inside `best_epoch=` on the final summary line.
"""

from __future__ import annotations

import json

# The names training prints; each becomes a metric of the same name.
METRIC_NAMES = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_f1",
    "train_samples_per_sec",
)

# A decimal or scientific number: 3, 0.8300, 45.12, 1.000e-04, -0.5.
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def regex(name: str) -> str:
    return rf"\b{name}={NUMBER}"


def metric_definitions() -> list[dict[str, str]]:
    """[{"Name": ..., "Regex": ...}], the shape of AlgorithmSpecification.MetricDefinitions."""
    return [{"Name": name, "Regex": regex(name)} for name in METRIC_NAMES]


def as_json() -> str:
    """For a console-created job, or the SDK v2 Estimator's metric_definitions."""
    return json.dumps(metric_definitions(), indent=2)


def as_markdown() -> str:
    """The README's table: one row per metric, the regex ready to paste into the console."""
    rows = ["| Metric name | Regex |", "| --- | --- |"]
    rows += [f"| `{d['Name']}` | `{d['Regex']}` |" for d in metric_definitions()]
    return "\n".join(rows)
