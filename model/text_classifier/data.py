"""Channels to DataFrames: read, check and split the labelled texts.

A channel is a directory of CSV, TSV, JSON Lines or Parquet files (optionally .gz),
read with pandas and concatenated. Everything wrong with the data is a `UserError`
naming the file and column, raised before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UserError

_READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=True),
    ".parquet": lambda p: pd.read_parquet(p),
}
SUPPORTED = tuple(_READERS)


def _format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes and suffixes[-1] in _READERS else None


def data_files(channel: Path) -> list[Path]:
    """The readable files of a channel, in a stable order (hidden files skipped)."""
    files = sorted(
        p
        for p in channel.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(channel).parts)
    )
    return [p for p in files if _format(p)]


def read_channel(channel: Path, text_column: str, label_column: str) -> pd.DataFrame:
    """All files of a channel as one DataFrame with columns `text` and `label`."""
    files = data_files(channel)
    if not files:
        others = [p.name for p in channel.rglob("*") if p.is_file()][:5]
        hint = f" (found only: {', '.join(others)})" if others else " (it is empty)"
        raise UserError(
            f"channel '{channel.name}' has no data files{hint}; "
            f"expected files ending in {', '.join(SUPPORTED)}"
        )
    frames = []
    for path in files:
        try:
            frame = _READERS[_format(path)](path)
        except Exception as exc:  # pandas raises many types for a broken file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot read {channel.name}/{path.name}: {first}") from exc
        missing = [c for c in (text_column, label_column) if c not in frame.columns]
        if missing:
            raise UserError(
                f"{channel.name}/{path.name} has no column {missing[0]!r} "
                f"(columns: {', '.join(map(str, frame.columns))}); "
                "set the text_column / label_column hyperparameters"
            )
        part = frame[[text_column, label_column]].rename(
            columns={text_column: "text", label_column: "label"}
        )
        part["source"] = f"{channel.name}/{path.name}"
        frames.append(part)
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise UserError(f"channel '{channel.name}' has files but no rows")
    _check_rows(df, channel.name)
    return df


def _check_rows(df: pd.DataFrame, channel: str) -> None:
    text = df["text"]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    if empty.any():
        first = df.index[empty][0]
        raise UserError(
            f"channel '{channel}' has {int(empty.sum())} empty texts "
            f"(first in {df.at[first, 'source']}); remove or fill them"
        )
    df["text"] = text.astype(str)
    no_label = df["label"].isna()
    if no_label.any():
        first = df.index[no_label][0]
        raise UserError(
            f"channel '{channel}' has {int(no_label.sum())} rows without a label "
            f"(first in {df.at[first, 'source']})"
        )


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
    as_key = (lambda v: int(v)) if isinstance(names[0], int) else (lambda v: str(v))
    index = {name: i for i, name in enumerate(names)}
    keys = labels.map(as_key)
    unknown = sorted(set(keys) - set(index), key=str)
    if unknown:
        raise UserError(f"channel '{channel}' has labels not in the training data: {unknown[:5]}")
    return keys.map(index).to_numpy(dtype=np.int64)


@dataclass
class Splits:
    """Texts and integer labels, ready for a DataModule."""

    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    names: list[str | int]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def has_validation(self) -> bool:
        return len(self.val_texts) > 0


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


def load_splits(
    train_dir: Path,
    val_dir: Path | None,
    text_column: str,
    label_column: str,
    validation_fraction: float,
    seed: int,
) -> Splits:
    train = read_channel(train_dir, text_column, label_column)
    names = label_names(train["label"])
    if len(names) < 2:
        raise UserError(
            f"the training data has a single class ({names[0]!r}); a classifier needs two or more"
        )
    labels = encode_labels(train["label"], names, train_dir.name)
    if val_dir is not None:
        val = read_channel(val_dir, text_column, label_column)
        return Splits(
            train["text"].tolist(),
            labels,
            val["text"].tolist(),
            encode_labels(val["label"], names, val_dir.name),
            names,
        )
    if validation_fraction == 0:
        return Splits(train["text"].tolist(), labels, [], np.zeros(0, np.int64), names)
    tr, va = stratified_split(labels, validation_fraction, seed)
    texts = train["text"].to_numpy()
    return Splits(texts[tr].tolist(), labels[tr], texts[va].tolist(), labels[va], names)
