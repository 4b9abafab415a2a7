"""Extracting a channel's `*.tar.gz` (an earlier job's model.tar.gz) without trusting it.

Refused, with a `UserError` naming the archive and the member:
- a member that would land outside the destination (an absolute name, `..`, a link that
  leaves it) or that is not a file, folder or link inside it (devices, fifos): tarfile's
  "data" filter, plus our own check of names;
- a bomb: more than `Limits.max_bytes` or `Limits.max_files` once extracted, or more than
  `MAX_RATIO` times the archive's size beyond the first `RATIO_FLOOR_BYTES` (6 MB that
  expands to 2 GB is refused after 1.2 GB, whatever the limits);
- a damaged archive, including a gzip stream cut short after the tar's last member (its
  CRC and length trailer is read and checked, not skipped).

A refused archive leaves a partial extraction in `dest`, which is a scratch folder.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UserError

MAX_RATIO = 200  # model weights barely compress; tokenizer files about 5x
RATIO_FLOOR_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024**3
    max_files: int = 100_000

    @classmethod
    def of(cls, max_gb: float, max_files: int) -> Limits:
        return cls(int(max_gb * 1024**3), max_files)


def extract(tarball: Path, dest: Path, where: str, limits: Limits = Limits()) -> None:
    """Extract `tarball` into `dest`; `where` names it in errors (`pretrained/model.tar.gz`)."""
    budget = max(tarball.stat().st_size * MAX_RATIO, RATIO_FLOOR_BYTES)
    total, files = 0, 0

    def safe(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        nonlocal total, files
        name = member.name.replace("\\", "/")
        if name.startswith("/") or PurePosixPath(name).is_absolute():
            raise UserError(f"{where} is refused: member {member.name!r} has an absolute path")
        if ".." in PurePosixPath(name).parts:
            raise UserError(f"{where} is refused: member {member.name!r} contains '..'")
        total += member.size
        files += 1
        if total > limits.max_bytes:
            raise UserError(
                f"{where} is refused: it expands past {limits.max_bytes / 1024**3:g} GB "
                "(max_unpacked_gb)"
            )
        if files > limits.max_files:
            raise UserError(
                f"{where} is refused: it holds more than {limits.max_files} files "
                "(max_unpacked_files)"
            )
        if total > budget:
            raise UserError(
                f"{where} is refused: it expands past {MAX_RATIO} times its "
                f"{tarball.stat().st_size} bytes, as no model does (a tar bomb?)"
            )
        return tarfile.data_filter(member, path)

    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tarball, "r:*") as tar:
            tar.extractall(dest, filter=safe)
            # tarfile stops at the end-of-archive blocks: read the rest of the compressed
            # stream too, so that a damaged or truncated trailer fails its check here.
            while tar.fileobj.read(1024 * 1024):
                pass
    except tarfile.FilterError as exc:
        raise UserError(f"{where} is refused: {exc}") from exc
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read {where} as a gzipped tar archive: {exc}") from exc
