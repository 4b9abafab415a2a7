"""Channels to DataFrames, for every plug-in.

A channel is a directory of CSV, TSV, JSON Lines or Parquet files (optionally .gz),
read with pandas and concatenated, with a `SOURCE` column naming each row's file.
Everything wrong with the files is a `UserError` naming the file and column, raised
before any model is built; plug-ins check their own columns' values (`Plugin.prepare`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
SOURCE = "_source_file"  # the column naming each row's file, for error messages


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


def read_channel(channel: Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """All files of a channel as one DataFrame, plus `SOURCE` (the file of each row).
    Each file must have every one of `columns`; other columns are kept."""
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
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UserError(
                f"{channel.name}/{path.name} has no column {missing[0]!r} "
                f"(columns: {', '.join(map(str, frame.columns))}); "
                "check the hyperparameters that name columns"
            )
        frame.columns = [str(c) for c in frame.columns]
        frame[SOURCE] = f"{channel.name}/{path.name}"
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise UserError(f"channel '{channel.name}' has files but no rows")
    return df
