"""Evaluation results for output/data/: metrics.json, and reports and plots that
plug-ins use in their `evaluate` (classification: per-class figures and a confusion
matrix)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence) -> dict:
    """Accuracy, macro-F1, each class's precision, recall, F1 and support, and the
    confusion matrix (rows true, columns predicted) of class indices into `names`."""
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


# Class names are the data's text: drawn as they are, never as TeX or math text (a label
# `$\foo{$` would fail the job after training), cut to a readable length.
MAX_LABEL_CHARS = 40
# Past this many classes the cells' numbers are left out (unreadable, and a Text each),
# and past the second one the class names too; the figure stops growing at MAX_INCHES.
MAX_CELL_NUMBERS, MAX_TICK_LABELS, MAX_INCHES = 40, 150, 30.0


def _label(name: object) -> str:
    text = str(name)
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "\u2026"


def plot_confusion_matrix(cm: list[list[int]], names: Sequence, path: Path) -> None:
    """The confusion matrix drawn into `path` (PNG), class names as plain text, cut to
    MAX_LABEL_CHARS; cell numbers and names left out past many classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(cm)
    size = min(MAX_INCHES, max(4.0, 0.6 * len(names) + 2))
    with plt.rc_context({"text.usetex": False}):  # whatever a matplotlibrc says
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(matrix, cmap="Blues")
        if len(names) <= MAX_TICK_LABELS:
            ticks = range(len(names))
            labels = [_label(n) for n in names]
            ax.set_xticks(ticks, labels, rotation=45, ha="right", parse_math=False)
            ax.set_yticks(ticks, labels, parse_math=False)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("validation confusion matrix")
        threshold = matrix.max() / 2 if matrix.size else 0
        if len(names) <= MAX_CELL_NUMBERS:
            for (i, j), value in np.ndenumerate(matrix):
                color = "white" if value > threshold else "black"
                ax.text(j, i, str(value), ha="center", va="center", color=color)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)


def classification_evaluation(
    y_true: np.ndarray, y_pred: np.ndarray, names: Sequence, out_dir: Path
) -> dict:
    """A classifier plug-in's `evaluate` result: the report, `val_accuracy` and `val_f1`
    at its top level (the result line), and confusion_matrix.png in `out_dir`."""
    report = classification_report(y_true, y_pred, names)
    plot_confusion_matrix(
        report["confusion_matrix"], report["labels"], out_dir / "confusion_matrix.png"
    )
    return {"val_accuracy": report["accuracy"], "val_f1": report["macro_f1"], **report}


def write_metrics(out_dir: Path, report: dict, extra: dict) -> None:
    """metrics.json: the platform's figures of the run, then the plug-in's report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({**extra, **report}, indent=1) + "\n")


def headline(report: dict) -> dict[str, float]:
    """The report's top-level `val_*` numbers, for the job's `result` log line."""
    return {
        k: v
        for k, v in report.items()
        if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


# --- regression --------------------------------------------------------------------------
def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """RMSE, MAE and R² (1 - residual / total sum of squares; 0 when the targets are all
    equal) of predictions against the true values, in the target's units."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    n = len(y_true)
    if n == 0:
        return {"rmse": 0.0, "mae": 0.0, "r2": 0.0, "num_examples": 0}
    error = y_pred - y_true
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0
    return {
        "rmse": round(float(np.sqrt(np.mean(error**2))), 6),
        "mae": round(float(np.mean(np.abs(error))), 6),
        "r2": round(r2, 6),
        "num_examples": n,
    }


def plot_predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray, path: Path) -> None:
    """A scatter of predicted against true values, with the diagonal of perfect ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=12, alpha=0.6)
    if len(y_true):
        lo = float(min(y_true.min(), y_pred.min()))
        hi = float(max(y_true.max(), y_pred.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("validation: predicted vs actual")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
