"""Labels and held-out rows, for plug-ins that classify or regress on tables of rows.

When a job has no validation channel, a plug-in holds out `validation_fraction` of the
training rows here, seeded, so that a resumed or repeated job sees the same split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import UserError

if TYPE_CHECKING:
    from .plugin import TrainingData


def label_names(labels: pd.Series) -> list[str | int]:
    """The classes in a stable order: numeric when every label is an integer."""
    values = labels.unique().tolist()
    if all(
        isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
        for v in values
    ):
        return sorted({int(v) for v in values})
    return sorted({str(v) for v in values})


def encode_labels(labels: pd.Series, names: list[str | int], channel: str) -> np.ndarray:
    """Class indices of `labels` in `names`; labels not among them are a UserError."""
    as_key = (lambda v: int(v)) if isinstance(names[0], int) else (lambda v: str(v))
    index = {name: i for i, name in enumerate(names)}
    keys = labels.map(as_key)
    unknown = sorted(set(keys) - set(index), key=str)
    if unknown:
        raise UserError(f"channel '{channel}' has labels not in the training data: {unknown[:5]}")
    return keys.map(index).to_numpy(dtype=np.int64)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val): `fraction` of each class held out, at least one of each
    class with two or more rows, so that every class is seen in validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rng.shuffle(rows)
        n_val = round(len(rows) * fraction)
        n_val = min(max(n_val, 1), len(rows) - 1) if len(rows) >= 2 else 0
        val_idx.extend(rows[:n_val])
        train_idx.extend(rows[n_val:])
    return np.sort(np.array(train_idx, dtype=np.int64)), np.sort(np.array(val_idx, dtype=np.int64))


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val): a seeded random `fraction` of `n` rows held out (at least
    one when fraction > 0 and n >= 2), for regression and other unlabelled targets."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * fraction)
    n_val = min(max(n_val, 1), n - 1) if fraction > 0 and n >= 2 else 0
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)


def held_out(
    data: TrainingData, rows: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Which of the train channel's `rows` train and which validate, and how (the `data`
    log line's `validation`), by the one rule every shipped plug-in follows:
    - a validation channel (`data.validation`): every row trains, None validates,
      "channel";
    - `validation_fraction` 0: every row trains, none validates, "none";
    - else that fraction held out, seeded (`data.seed`): stratified by class where
      `labels` are given (`stratified_split`), at random otherwise (`random_split`),
      "split_<fraction>" ("none" when too few rows to hold any out)."""
    every = np.arange(rows, dtype=np.int64)
    if data.validation is not None:
        return every, None, "channel"
    fraction = data.validation_fraction
    if fraction == 0:
        return every, every[:0], "none"
    if labels is not None:
        train, val = stratified_split(labels, fraction, data.seed)
    else:
        train, val = random_split(rows, fraction, data.seed)
    return train, val, f"split_{fraction}" if len(val) else "none"


def class_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """Inverse class frequency for a weighted loss, normalised so that a balanced set
    gets all ones (a class absent from `labels` gets the weight of a single row)."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts[counts == 0] = 1.0
    return [round(float(w), 6) for w in len(labels) / (num_classes * counts)]
