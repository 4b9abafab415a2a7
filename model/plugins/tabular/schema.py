"""The feature schema: what training learned about the columns, and the one
preprocessing path that training and serving share.

    Schema.transform(columns) -> (numeric float32 [n, N], categorical int64 [n, C])

`columns` maps each feature name to its n values: a DataFrame in training, the columns
of a request's records in serving. Numeric values are standardised with the training
rows' mean and standard deviation; a missing one (NaN, None, "", "NA", ...) becomes the
mean, i.e. 0. Categorical values become indices into the training vocabulary, where 0
stands for missing and for a category training never saw. A value that is not a number
in a numeric column raises `BadValue` naming the column and the row; each side turns it
into its own error (a failure file naming the data file, a 400 naming the record).

Saved as schema.json in the model directory. Only numpy here: `prepare` runs before torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sagemaker_platform.artifacts import check_labels
from sagemaker_platform.errors import UserError

FORMAT_VERSION = 1
CLASSIFICATION, REGRESSION = "classification", "regression"
# What pandas reads as missing in a CSV file by default; a request's CSV field, or a JSON
# string, with one of these values is missing too, so both sides agree.
MISSING_STRINGS = frozenset(
    [
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)


class BadValue(ValueError):
    """A value that does not fit its column: `row` is its position in the input."""

    def __init__(self, column: str, row: int, value: Any, expected: str = "a number"):
        super().__init__(f"column {column!r} has {value!r} at row {row}, expected {expected}")
        self.column, self.row, self.value, self.expected = column, row, value, expected


def is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ == "NAType":  # pandas.NA
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in MISSING_STRINGS


def as_number(value: Any) -> float | None:
    """A finite float for a number or a numeric string, NaN when missing, None when the
    value is not a number (booleans are not)."""
    if is_missing(value):
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def numbers(values: Sequence[Any], column: str) -> np.ndarray:
    """`values` as float64, NaN where missing; BadValue at the first one that is not a
    number."""
    array = values.to_numpy() if hasattr(values, "to_numpy") else None
    if array is not None and array.dtype.kind in "iuf":
        out = array.astype(np.float64)
        bad = np.flatnonzero(np.isinf(out))
        if len(bad):
            raise BadValue(column, int(bad[0]), array[bad[0]])
        return out
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values if array is None else array):
        number = as_number(value)
        if number is None:
            raise BadValue(column, i, value)
        out[i] = number
    return out


def category(value: Any, column: str = "", row: int = 0) -> str | None:
    """A categorical value's key: its text (an integral float as an integer, so that
    3.0 read from a column with gaps matches 3), None when missing."""
    if is_missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (str, bool, int, float, np.generic)):
        return str(value)
    raise BadValue(column, row, value, "a string or a number")


@dataclass(frozen=True)
class Numeric:
    name: str
    mean: float
    std: float


@dataclass(frozen=True)
class Categorical:
    name: str
    categories: tuple[str, ...]  # category i is index i + 1; 0 is missing or unseen
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i + 1 for i, c in enumerate(self.categories)})

    @property
    def cardinality(self) -> int:
        return len(self.categories) + 1


@dataclass(frozen=True)
class Schema:
    """The feature columns (in the order CSV requests list them), how each is encoded,
    and the target: class names, or the mean and std a regression target is scaled by."""

    label_column: str
    task: str  # CLASSIFICATION or REGRESSION
    features: tuple[str, ...]
    numeric: tuple[Numeric, ...]
    categorical: tuple[Categorical, ...]
    labels: tuple[Any, ...] = ()  # classification: class names in output order
    target_mean: float = 0.0  # regression: the network predicts (y - mean) / std
    target_std: float = 1.0

    def transform(self, columns: Mapping[str, Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(numeric, categorical) arrays for the network: THE preprocessing function."""
        n = len(columns[self.features[0]])
        numeric = np.empty((n, len(self.numeric)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            x = numbers(columns[col.name], col.name)
            numeric[:, j] = np.where(np.isnan(x), 0.0, (x - col.mean) / col.std)
        categorical = np.empty((n, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            values = columns[col.name]
            values = values.to_numpy() if hasattr(values, "to_numpy") else values
            categorical[:, j] = [
                col.index.get(category(v, col.name, i), 0) for i, v in enumerate(values)
            ]
        return numeric, categorical

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.target_mean) / self.target_std).astype(np.float32)

    def unscale_target(self, y: np.ndarray) -> np.ndarray:
        return y * self.target_std + self.target_mean

    # --- schema.json ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "label_column": self.label_column,
            "task": self.task,
            "features": list(self.features),
            "numeric": [{"name": c.name, "mean": c.mean, "std": c.std} for c in self.numeric],
            "categorical": [
                {"name": c.name, "categories": list(c.categories)} for c in self.categorical
            ],
        }
        if self.task == CLASSIFICATION:
            out["labels"] = list(self.labels)
        else:
            out["target"] = {"mean": self.target_mean, "std": self.target_std}
        return out

    @classmethod
    def from_dict(cls, d: Any) -> Schema:
        try:
            if d["format_version"] != FORMAT_VERSION:
                raise UserError(
                    f"schema.json has format {d['format_version']}, expected {FORMAT_VERSION}"
                )
            regression = d["task"] == REGRESSION
            schema = cls(
                label_column=d["label_column"],
                task=d["task"],
                features=tuple(d["features"]),
                numeric=tuple(Numeric(c["name"], c["mean"], c["std"]) for c in d["numeric"]),
                categorical=tuple(
                    Categorical(c["name"], tuple(c["categories"])) for c in d["categorical"]
                ),
                labels=() if regression else tuple(d["labels"]),
                target_mean=d["target"]["mean"] if regression else 0.0,
                target_std=d["target"]["std"] if regression else 1.0,
            )
        except (KeyError, TypeError) as exc:
            raise UserError(f"model directory is corrupt: schema.json lacks {exc}") from None
        if not regression:
            check_labels(list(schema.labels), "schema.json's labels")
        encoded = {c.name for c in schema.numeric} | {c.name for c in schema.categorical}
        if schema.task not in (CLASSIFICATION, REGRESSION) or encoded != set(schema.features):
            raise UserError("model directory is corrupt: schema.json's columns do not add up")
        return schema
