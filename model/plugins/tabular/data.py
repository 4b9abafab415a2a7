"""Training rows: the platform's DataFrames -> the feature schema and numeric arrays.

Runs in `prepare`, before torch is imported: every problem with the data is a UserError
naming the column and the file (the platform writes it to output/failure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sagemaker_platform.artifacts import shown
from sagemaker_platform.channels import SOURCE
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData
from sagemaker_platform.splitting import encode_labels, held_out, label_names

from .config import Hyperparameters, names
from .schema import (
    CLASSIFICATION,
    MIN_STD,
    REGRESSION,
    BadValue,
    Categorical,
    Numeric,
    Schema,
    category,
    is_missing,
    looks_numeric,
    numbers,
)

MIN_ROWS = 10  # training rows, before the held-out split
MAX_AUTO_CLASSES = 20  # task=auto: integer labels with more distinct values are a regression


@dataclass
class Table:
    """Rows ready for the network: features and the target (class indices, or the
    regression target in its own units)."""

    numeric: np.ndarray  # float32 [n, numeric columns], standardised
    categorical: np.ndarray  # int64 [n, categorical columns]
    target: np.ndarray  # int64 class indices, or float64 values

    def __len__(self) -> int:
        return len(self.target)


@dataclass
class TabularRows:
    """What `prepare` hands to the later training steps."""

    schema: Schema
    train: Table
    val: Table
    validation: str  # where val came from: channel, split_<fraction> or none

    @property
    def has_validation(self) -> bool:
        return len(self.val) > 0


# --- columns ---------------------------------------------------------------------------
def feature_columns(hp: Hyperparameters, frame: pd.DataFrame) -> list[str]:
    listed = names(hp.feature_columns)
    if hp.label_column in listed:
        raise UserError(f"feature_columns lists the label column {hp.label_column!r}")
    if listed:
        return listed
    features = [c for c in frame.columns if c not in (hp.label_column, SOURCE)]
    if not features:
        raise UserError(f"the data has no column besides the label {hp.label_column!r}")
    return features


def check_columns(frame: pd.DataFrame, features: list[str], channel: str) -> None:
    """With inferred features, every file must have every feature column: pandas fills
    a column that one file lacks with NaN, which would pass for missing values."""
    for column in features:
        if column not in frame.columns:
            first = frame[SOURCE].iloc[0]
            raise UserError(f"{first} has no column {column!r}, which the training data has")
    several = frame[SOURCE].nunique() > 1
    for source, part in frame.groupby(SOURCE, sort=False):
        for column in features:
            if part[column].isna().all():
                other = " (the other files have it)" if several else ""
                raise UserError(
                    f"{source} has no values in column {column!r}{other}; give every file "
                    "the same columns, or list the inputs to use in feature_columns"
                )


def numeric_kind(values: pd.Series) -> bool:
    """A column is numeric when pandas read numbers, or when most of its values are
    numbers (then the others are errors, reported by `check_numbers`)."""
    if values.dtype.kind in "iuf":
        return True
    if values.dtype.kind == "b":
        return False
    present = [v for v in values.to_numpy() if not is_missing(v)]
    numeric = sum(looks_numeric(v) for v in present)
    return numeric > len(present) / 2


def where(frame: pd.DataFrame, i: int) -> str:
    """Row `i` of the channel's frame as `<file> (data row N)`: its row in its own file."""
    source = frame[SOURCE].iloc[i]
    row = int((frame[SOURCE].iloc[:i] == source).sum()) + 1
    return f"{source} (data row {row})"


def bad_value(
    bad: BadValue, frame: pd.DataFrame, what: str = "column", row: int | None = None
) -> UserError:
    """A UserError naming the column, the file, the row (`row` of `frame`, by default
    the BadValue's) and the value."""
    at = where(frame, bad.row if row is None else row)
    if bad.expected != "a number":
        return UserError(
            f"{what} {bad.column!r} has {shown(bad.value)} in {at}, expected {bad.expected}; "
            "fix the file, or rescale the column"
        )
    hint = "" if what != "column" else ", or name it in categorical_columns"
    return UserError(
        f"{what} {bad.column!r} has a non-numeric value {shown(bad.value)} in {at}; "
        f"fix the file{hint}"
    )


def check_numbers(frame: pd.DataFrame, column: str, what: str = "column") -> np.ndarray:
    """The column as float64; a UserError naming the file and first non-numeric value."""
    try:
        return numbers(frame[column], column)
    except BadValue as bad:
        raise bad_value(bad, frame, what) from None


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_target(frame: pd.DataFrame, y: np.ndarray, label: str) -> None:
    """Regression labels the network and its metrics can compute on, in 32-bit floats:
    each value, and the sum of their squared distances to the mean (what val_rmse adds
    up), within float32's range. Else a UserError naming the file and the row of the
    largest, instead of a job that trains to val_rmse=inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.abs(y - np.mean(y)) if len(y) else y
        squares = float(np.sum(np.square(spread)))
    if np.max(np.abs(y), initial=0.0) <= FLOAT32_MAX and squares <= FLOAT32_MAX:
        return
    i = int(np.argmax(np.where(np.isfinite(spread), spread, np.inf)))
    raise UserError(
        f"label column {label!r} holds values too large to train on: {y[i]:g} in "
        f"{where(frame, i)}; the model computes in 32-bit floats, where they (or their "
        "squared errors) overflow: rescale the column (to thousands, millions)"
    )


def check_categories(frame: pd.DataFrame, column: str) -> list[str | None]:
    try:
        return [category(v, column, i) for i, v in enumerate(frame[column].to_numpy())]
    except BadValue as bad:
        source = frame[SOURCE].iloc[bad.row]
        raise UserError(
            f"column {column!r} has {bad.value!r} in {source}, expected {bad.expected}"
        ) from None


def check_labels(frame: pd.DataFrame, label: str, channel: str) -> None:
    missing = frame[label].isna()
    if missing.any():
        first = frame[SOURCE][missing].iloc[0]
        raise UserError(
            f"channel '{channel}' has {int(missing.sum())} rows without a value in the label "
            f"column {label!r} (first in {first})"
        )


def detect_task(hp: Hyperparameters, labels: pd.Series) -> str:
    """task=auto: classification for text labels, and for integers with few distinct
    values (at most MAX_AUTO_CLASSES and fewer than half the rows); else regression."""
    if hp.task != "auto":
        return hp.task
    if labels.dtype.kind not in "iuf":
        return CLASSIFICATION
    values = labels.to_numpy(dtype=np.float64)
    if not np.all(np.mod(values, 1) == 0):
        return REGRESSION
    distinct = len(np.unique(values))
    few = distinct <= MAX_AUTO_CLASSES and distinct < len(values) / 2
    return CLASSIFICATION if few else REGRESSION


# --- the rows --------------------------------------------------------------------------
def load_rows(hp: Hyperparameters, data: TrainingData) -> TabularRows:
    """The channels' tables checked (every value names its file and row when bad), the
    schema fitted on the training rows alone, and both sets of rows encoded by it."""
    train, val = data.train, data.validation
    features, numeric, categorical = _feature_kinds(hp, train, val)
    task, classes, y = _target(hp, train)
    if val is not None:
        check_labels(val, hp.label_column, "validation")
    tr, va, validation = held_out(data, len(train), y if task == CLASSIFICATION else None)
    schema = _fit_schema(hp, train, tr, y, task, classes, features, numeric, categorical)
    train_table = table(schema, train, tr, y[tr])
    if va is None:  # the validation channel
        val_table = table(schema, val, np.arange(len(val)), _val_target(hp, val, task, classes))
    else:
        val_table = table(schema, train, va, y[va])
    return TabularRows(schema, train_table, val_table, validation)


def _feature_kinds(
    hp: Hyperparameters, train: pd.DataFrame, val: pd.DataFrame | None
) -> tuple[list[str], list[str], list[str]]:
    """The feature columns in order, then the numeric and the categorical ones, every
    value of them checked in both channels."""
    features = feature_columns(hp, train)
    if not names(hp.feature_columns):
        check_columns(train, features, "train")
    if val is not None:
        check_columns(val, features, "validation")
    named = names(hp.categorical_columns)
    for column in named:
        if column not in features:
            raise UserError(
                f"categorical_columns names {column!r}, which is not a feature column "
                f"(features: {', '.join(features)})"
            )
    numeric = [c for c in features if c not in named and numeric_kind(train[c])]
    categorical = [c for c in features if c not in numeric]
    for frame in (train, val) if val is not None else (train,):
        for column in numeric:
            check_numbers(frame, column)
        for column in categorical:
            check_categories(frame, column)
    return features, numeric, categorical


def _target(hp: Hyperparameters, train: pd.DataFrame) -> tuple[str, list, np.ndarray]:
    """The task, the classes (a classifier's) and the training rows' targets."""
    label = hp.label_column
    check_labels(train, label, "train")
    if len(train) < MIN_ROWS:
        raise UserError(
            f"the training data has {len(train)} rows; the tabular model needs at least {MIN_ROWS}"
        )
    task = detect_task(hp, train[label])
    if task != CLASSIFICATION:
        y = check_numbers(train, label, "label column")
        check_target(train, y, label)
        return task, [], y
    classes = label_names(train[label])
    if len(classes) < 2:
        raise UserError(
            f"the label column {label!r} has a single class ({classes[0]!r}); a "
            "classifier needs two or more (or set task=regression)"
        )
    return task, classes, encode_labels(train[label], classes, "train")


def _val_target(hp: Hyperparameters, val: pd.DataFrame, task: str, classes: list) -> np.ndarray:
    """The validation channel's targets, in the training rows' classes."""
    if task == CLASSIFICATION:
        return encode_labels(val[hp.label_column], classes, "validation")
    y = check_numbers(val, hp.label_column, "label column")
    check_target(val, y, hp.label_column)
    return y


def _fit_schema(
    hp: Hyperparameters,
    train: pd.DataFrame,
    tr: np.ndarray,
    y: np.ndarray,
    task: str,
    classes: list,
    features: list[str],
    numeric: list[str],
    categorical: list[str],
) -> Schema:
    """Each numeric column's mean and spread and each categorical one's vocabulary, from
    the rows that train (`tr`) alone: what serving reads back from schema.json."""
    fit = train.iloc[tr]
    stats = []
    for column in numeric:
        x = numbers(fit[column], column)
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float(np.nanmean(x)) if not np.isnan(x).all() else 0.0
            std = float(np.nanstd(x)) if not np.isnan(x).all() else 1.0
        if not (math.isfinite(mean) and math.isfinite(std)):  # values near 1e308
            i = int(np.nanargmax(np.abs(x)))
            raise UserError(
                f"column {column!r} holds values too large to standardise: {x[i]:g} in "
                f"{where(train, int(tr[i]))}; rescale the column"
            )
        stats.append(Numeric(column, mean, std if std >= MIN_STD else 1.0))
    vocabularies = []
    for column in categorical:
        seen = {category(v) for v in fit[column].to_numpy()} - {None}
        vocabularies.append(Categorical(column, tuple(sorted(seen))))
    target_mean = float(np.mean(y[tr])) if task == REGRESSION else 0.0
    target_std = float(np.std(y[tr])) if task == REGRESSION else 1.0
    return Schema(
        label_column=hp.label_column,
        task=task,
        features=tuple(features),
        numeric=tuple(stats),
        categorical=tuple(vocabularies),
        labels=tuple(classes),
        target_mean=target_mean,
        target_std=target_std if target_std >= MIN_STD else 1.0,
    )


def table(schema: Schema, frame: pd.DataFrame, rows: np.ndarray, target: np.ndarray) -> Table:
    """The channel `frame`'s `rows`, transformed by the schema."""
    try:
        numeric, categorical = schema.transform(frame.iloc[rows])
    except BadValue as bad:  # a value that overflows once standardised
        raise bad_value(bad, frame, row=int(rows[bad.row])) from None
    return Table(numeric, categorical, target)
