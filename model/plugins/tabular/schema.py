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

from sagemaker_platform.artifacts import (
    check_choice,
    check_distinct,
    check_labels,
    check_list,
    check_number,
    check_str,
    corrupt,
    member,
    shown,
)
from sagemaker_platform.errors import UserError

FORMAT_VERSION = 1
SCHEMA = "schema.json"
# A column (or target) whose training values spread less than this is scaled by 1: a
# smaller std in schema.json is none training wrote, and would blow values up.
MIN_STD = 1e-12
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


FINITE = "a finite number"  # what BadValue expects of an infinite or overflowing number
# ... and of one whose standardised value is beyond the float32 the network computes in
IN_RANGE = (
    "a number within the model's range (standardised by the training data's mean and "
    "std, it overflows)"
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
    try:
        if isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except (ValueError, OverflowError):  # not a number; an integer of 400 digits
        return None
    return number if math.isfinite(number) else None


def looks_numeric(value: Any) -> bool:
    """A number, or a string Python reads as one, however large (`1e999`, 400 digits)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isnan(value)
    if isinstance(value, str):
        try:
            return not math.isnan(float(value.strip()))
        except ValueError:
            return False
    return False


def numbers(values: Sequence[Any], column: str) -> np.ndarray:
    """`values` as float64, NaN where missing; BadValue at the first one that is not a
    number."""
    array = values.to_numpy() if hasattr(values, "to_numpy") else None
    if array is not None and array.dtype.kind in "iuf":
        out = array.astype(np.float64)
        bad = np.flatnonzero(np.isinf(out))
        if len(bad):
            raise BadValue(column, int(bad[0]), array[bad[0]], FINITE)
        return out
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values if array is None else array):
        number = as_number(value)
        if number is None:
            raise BadValue(column, i, value, FINITE if looks_numeric(value) else "a number")
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


def _value(values: Sequence[Any], i: int) -> Any:
    return values.iloc[i] if hasattr(values, "iloc") else values[i]


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
            with np.errstate(over="ignore"):
                numeric[:, j] = np.where(np.isnan(x), 0.0, (x - col.mean) / col.std)
            overflow = np.flatnonzero(~np.isfinite(numeric[:, j]))
            if len(overflow):  # 1e308: the network would answer NaN for it
                i = int(overflow[0])
                raise BadValue(col.name, i, _value(columns[col.name], i), IN_RANGE)
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
        """The schema in schema.json, every value checked: a UserError naming the key
        and the value when one is of the wrong type or range (a std of 0 or "x" would
        load, and then answer every request with null or a 500)."""
        version = member(d, "format_version", SCHEMA)
        if type(version) is not int or version != FORMAT_VERSION:
            raise UserError(
                f"model directory has format {shown(version)} in {SCHEMA}, expected {FORMAT_VERSION}"
            )
        task = check_choice(
            member(d, "task", SCHEMA), f"{SCHEMA}: task", (CLASSIFICATION, REGRESSION)
        )
        features = tuple(_names(member(d, "features", SCHEMA), "features"))
        numeric = []
        for i, c in enumerate(check_list(member(d, "numeric", SCHEMA), f"{SCHEMA}: numeric")):
            where = f"{SCHEMA}: numeric[{i}]"
            numeric.append(
                Numeric(
                    check_str(member(c, "name", where), f"{where}.name", empty=True),
                    check_number(member(c, "mean", where), f"{where}.mean"),
                    check_number(member(c, "std", where), f"{where}.std", lo=MIN_STD),
                )
            )
        categorical = []
        for i, c in enumerate(
            check_list(member(d, "categorical", SCHEMA), f"{SCHEMA}: categorical")
        ):
            where = f"{SCHEMA}: categorical[{i}]"
            name = check_str(member(c, "name", where), f"{where}.name", empty=True)
            categories = _names(member(c, "categories", where), f"categorical[{i}].categories")
            categorical.append(Categorical(name, tuple(categories)))
        labels: tuple[Any, ...] = ()
        target_mean, target_std = 0.0, 1.0
        if task == CLASSIFICATION:
            labels = tuple(check_labels(member(d, "labels", SCHEMA), f"{SCHEMA}'s labels"))
            if len(labels) < 2:
                raise corrupt(f"{SCHEMA}: labels", "lists fewer than two classes")
        else:
            target = member(d, "target", SCHEMA)
            target_mean = check_number(
                member(target, "mean", f"{SCHEMA}: target"), f"{SCHEMA}: target.mean"
            )
            target_std = check_number(
                member(target, "std", f"{SCHEMA}: target"), f"{SCHEMA}: target.std", lo=MIN_STD
            )
        schema = cls(
            label_column=check_str(member(d, "label_column", SCHEMA), f"{SCHEMA}: label_column"),
            task=task,
            features=features,
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            labels=labels,
            target_mean=target_mean,
            target_std=target_std,
        )
        encoded = [c.name for c in schema.numeric] + [c.name for c in schema.categorical]
        if not features or sorted(encoded) != sorted(features):
            raise corrupt(
                SCHEMA, "columns do not add up: every feature must be numeric or categorical, once"
            )
        return schema


def _names(value: Any, key: str) -> list[str]:
    """A list of distinct strings in schema.json (features, a column's categories)."""
    where = f"{SCHEMA}: {key}"
    names = [
        check_str(v, f"{where}[{i}]", empty=True) for i, v in enumerate(check_list(value, where))
    ]
    return check_distinct(names, where)
