"""Evaluation results for output/data/: metrics.json and a confusion-matrix PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence) -> dict:
    k = len(names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(names):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[str(name)] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
    total = int(cm.sum())
    return {
        "accuracy": round(float(np.trace(cm)) / total, 4) if total else 0.0,
        "macro_f1": round(float(np.mean(f1s)), 4),
        "num_examples": total,
        "per_class": per_class,
        "labels": [n if isinstance(n, (int, str)) else str(n) for n in names],
        "confusion_matrix": cm.tolist(),
    }


def plot_confusion_matrix(cm: list[list[int]], names: Sequence, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(cm)
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(names))
    ax.set_xticks(ticks, [str(n) for n in names], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(n) for n in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("validation confusion matrix")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > threshold else "black",
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(out_dir: Path, report: dict, extra: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({**extra, **report}, indent=1) + "\n")
    if report.get("confusion_matrix"):
        plot_confusion_matrix(
            report["confusion_matrix"], report["labels"], out_dir / "confusion_matrix.png"
        )
