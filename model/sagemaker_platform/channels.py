"""Channels to DataFrames, for every plug-in, in one of two ways (`Plugin.data`):

    tables  (the default)  a directory of CSV, TSV, JSON Lines or Parquet files
                           (optionally .gz), read with pandas and concatenated, with a
                           `SOURCE` column naming each row's file (`read_channel`)
    files                  a directory of any files (images, audio, .npy, .tar shards):
                           listed, never opened, one row per file with its `PATH`
                           (absolute), `RELATIVE` (posix path inside the channel,
                           `cat/001.png`: ImageFolder labels are its first part), `SIZE`
                           (bytes) and `SOURCE` (`list_files`). The plug-in opens them
                           itself, when it needs them: in FastFile mode a file's bytes
                           are fetched from S3 only then.

Either way a row count is the channel's size, `splitting` splits the rows and a sharded
channel's rows are this host's (SageMaker copies each host only its share of the S3
objects). Hidden files and folders (a name starting with ".") are skipped. Everything
wrong is a `UserError` naming the file (and column), raised before any model is built;
plug-ins check their own values (`Plugin.prepare`).
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .errors import UserError
from .memory import container_memory_mb

TABLES = "tables"
FILES = "files"
KINDS = (TABLES, FILES)


class NoData(UserError):
    """A channel with nothing to read (empty, or no file of a kind the reader takes)."""


# Each takes a path, or an open binary file of the decompressed bytes (`_Inflated`).
_READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=True),
    ".parquet": lambda p: pd.read_parquet(p),
}
SUPPORTED = tuple(_READERS)
SOURCE = "_source_file"  # the column naming each row's file, for error messages
# A files channel's columns (besides SOURCE, which is `<channel>/<relative>` there).
PATH = "path"  # the file's absolute path, as a string: what the plug-in opens
RELATIVE = "relative"  # its path inside the channel, with "/" separators
SIZE = "size"  # its size in bytes (from the directory listing: nothing is read)


def _format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes and suffixes[-1] in _READERS else None


def data_files(channel: Path) -> list[Path]:
    """The readable files of a channel, in a stable order (hidden files skipped), listed
    as `list_files` lists them: a link out of the channel is refused, never read."""
    try:
        listed = list_files(channel)
    except NoData:
        return []
    return [Path(p) for p in listed[PATH] if _format(Path(p))]


def memory_bytes() -> int:
    """This container's memory: what one decompressed table may not exceed (`_Inflated`)."""
    return int(container_memory_mb() * 2**20) or os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES"
    )


class _Inflated(io.RawIOBase):
    """A gzipped file's decompressed bytes, refused past `limit` as they are read: a
    small `.csv.gz` may expand to more than the machine holds (2 GB of zeros gzip to 2
    MB), and pandas would be killed for memory instead of failing with a reason."""

    def __init__(self, path: Path, where: str, limit: int):
        self._gz = gzip.open(path, "rb")  # noqa: SIM115 - closed in close()
        self._where, self._limit, self._read = where, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._gz.readinto(buffer)
        self._read += n
        if self._read > self._limit:
            raise UserError(
                f"{self._where} expands past {self._limit:,} bytes, this container's memory: "
                "a gzip bomb, or a table for a bigger instance"
            )
        return n

    def close(self) -> None:
        self._gz.close()
        super().close()


def _read_table(path: Path, where: str) -> pd.DataFrame:
    reader = _READERS[_format(path)]
    if path.suffix.lower() != ".gz" or _format(path) == ".parquet":
        return reader(path)  # parquet's own compression is inside its pages
    with io.BufferedReader(_Inflated(path, where, memory_bytes())) as inflated:
        return reader(inflated)


def read_channel(channel: Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """All files of a channel as one DataFrame, plus `SOURCE` (the file of each row).
    Each file must have every one of `columns`; other columns are kept."""
    files = data_files(channel)
    if not files:
        others = [p.name for p in channel.rglob("*") if p.is_file()][:5]
        hint = f" (found only: {', '.join(others)})" if others else " (it is empty)"
        raise NoData(
            f"channel '{channel.name}' has no data files{hint}; "
            f"expected files ending in {', '.join(SUPPORTED)}"
        )
    frames = []
    for path in files:
        try:
            frame = _read_table(path, f"{channel.name}/{path.name}")
        except UserError:
            raise
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


def list_files(channel: Path) -> pd.DataFrame:
    """Every file of a channel, one row each (`PATH`, `RELATIVE`, `SIZE`, `SOURCE`),
    sorted by `RELATIVE`; no file is opened. Hidden files and folders are skipped. A
    symbolic link is listed by the path of the file it points to when that file is in
    the channel; one that points outside it (or to a folder, or nowhere) is a
    `UserError` naming it: a channel's files are input, and input may be hostile."""
    root = channel.resolve()
    rows: list[tuple[str, str, int]] = []
    for folder, dirs, names in os.walk(root, onerror=_unreadable(channel, root)):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for link in (d for d in dirs if (here / d).is_symlink()):
            _refuse_link(channel, root, here / link, "a folder")
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                path = _link_target(channel, root, path)
            elif not path.is_file():  # a FIFO, socket or device: never a data file
                raise UserError(
                    f"{channel.name}/{relative} is not a regular file; a channel holds files"
                )
            rows.append((str(path), relative, path.stat().st_size))
    if not rows:
        raise NoData(f"channel '{channel.name}' has no files (it is empty)")
    rows.sort(key=lambda row: row[1])
    frame = pd.DataFrame(rows, columns=[PATH, RELATIVE, SIZE])
    frame[SOURCE] = channel.name + "/" + frame[RELATIVE]
    return frame


def _unreadable(channel: Path, root: Path):
    def fail(exc: OSError) -> None:
        where = Path(os.path.relpath(exc.filename, root)).as_posix() if exc.filename else "?"
        raise UserError(f"{channel.name}/{where} cannot be listed: {exc.strerror}") from exc

    return fail


def _link_target(channel: Path, root: Path, link: Path) -> Path:
    """The file a symbolic link in the channel points to, when it is inside the channel."""
    target = link.resolve()
    if not target.is_relative_to(root) or not target.is_file():
        _refuse_link(channel, root, link, "a file" if target.is_file() else "nothing readable")
    return target


def _refuse_link(channel: Path, root: Path, link: Path, what: str) -> None:
    relative = link.relative_to(root).as_posix()
    target = link.resolve()
    where = "inside" if target.is_relative_to(root) else "outside"
    raise UserError(
        f"{channel.name}/{relative} is a symbolic link to {what} {where} the channel; "
        "only links to files inside the channel are followed"
    )


def read(channel: Path, kind: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """The channel as a plug-in of `kind` (`TABLES` or `FILES`) reads it."""
    return list_files(channel) if kind == FILES else read_channel(channel, columns)
