"""Extracting a channel's `*.tar.gz` (an earlier job's model.tar.gz) without trusting it.

Only files and folders are extracted, by this module itself, not by `tarfile.extractall`:
tarfile's "data" filter, which checks where a link leads, is bypassed by a chain of
symlinks before Python 3.11.13 / 3.12.11 / 3.13.4, and what is safe here must
not depend on the Python that runs it. Refused, with a `UserError` naming the archive and
the member:
- a symbolic or hard link: no model archive needs one (a folder tarred from a Hugging Face
  cache holds links: tar it with `--dereference`), and without links nothing can be
  written anywhere but where the member's own name says;
- a name that would leave the destination: absolute, or with `..`;
- a device, fifo or any other special file;
- a member under a path an earlier member wrote as a file, or a second member of the
  same name (every file is created new, never written through or over what is there);
- a bomb: more than `Limits.max_bytes` or `Limits.max_files` once extracted, or more than
  `MAX_RATIO` times the archive's size beyond the first `RATIO_FLOOR_BYTES` (6 MB that
  expands to 2 GB is refused after 1.2 GB, whatever the limits);
- a damaged archive, including a gzip stream cut short after the tar's last member (its
  CRC and length trailer is read and checked, not skipped).

Every folder is entered by a file descriptor opened with `O_NOFOLLOW | O_DIRECTORY`
relative to its parent, starting from the destination's, and every file is opened with
`O_CREAT | O_EXCL | O_NOFOLLOW` in it: a path can only lead through real folders this
function created inside the destination. Modes are not taken from the archive (files
0644, folders 0755, less the umask). A refused archive leaves a partial extraction in
`dest`, which is a scratch folder.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UserError

MAX_RATIO = 200  # model weights barely compress; tokenizer files about 5x
RATIO_FLOOR_BYTES = 64 * 1024**2

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024**3
    max_files: int = 100_000

    @classmethod
    def of(cls, max_gb: float, max_files: int) -> Limits:
        return cls(int(max_gb * 1024**3), max_files)


def extract(tarball: Path, dest: Path, where: str, limits: Limits = Limits()) -> None:
    """Extract `tarball`'s files and folders into `dest` (created when missing; else it
    must be an empty folder, not a link); `where` names it in errors
    (`pretrained/model.tar.gz`)."""
    size = tarball.stat().st_size
    budget = max(size * MAX_RATIO, RATIO_FLOOR_BYTES)
    total, files = 0, 0
    root = _open_dest(dest)
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for member in tar:
                parts = _checked_parts(member, where)
                total += member.size
                files += 1
                if total > limits.max_bytes:
                    raise UserError(
                        f"{where} is refused: it expands past "
                        f"{limits.max_bytes / 1024**3:g} GB (max_unpacked_gb)"
                    )
                if files > limits.max_files:
                    raise UserError(
                        f"{where} is refused: it holds more than {limits.max_files} files "
                        "(max_unpacked_files)"
                    )
                if total > budget:
                    raise UserError(
                        f"{where} is refused: it expands past {MAX_RATIO} times its "
                        f"{size} bytes, as no model does (a tar bomb?)"
                    )
                _write(tar, member, parts, root, where)
            # The member loop stops at the end-of-archive blocks: read the rest of the
            # compressed stream too, so that a damaged or truncated trailer fails here.
            while tar.fileobj.read(1024 * 1024):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read {where} as a gzipped tar archive: {exc}") from exc
    finally:
        os.close(root)


def _open_dest(dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    root = os.open(dest, _DIR_FLAGS)  # a link here fails (ELOOP): never followed
    if os.listdir(root):
        os.close(root)
        raise ValueError(f"{dest} is not empty: archives are extracted into a new folder")
    return root


def _checked_parts(member: tarfile.TarInfo, where: str) -> tuple[str, ...]:
    """The member's path inside the destination, as folder names; refused unless it is
    a file or a folder whose name stays inside."""
    refused = f"{where} is refused: member {_shown(member.name)}"
    name = member.name.replace("\\", "/")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise UserError(f"{refused} has an absolute path")
    parts = PurePosixPath(name).parts  # "." and empty components dropped
    if ".." in parts:
        raise UserError(f"{refused} contains '..'")
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        raise UserError(
            f"{refused} is a {kind} (to {_shown(member.linkname)}); links are not "
            "extracted, as no model archive needs one: archive the files themselves "
            "(tar --dereference)"
        )
    if not (member.isreg() or member.isdir()):
        kind = _SPECIAL.get(member.type, f"of tar type {member.type!r}")
        raise UserError(
            f"{refused} is {kind}, a special file; model archives hold only files and folders"
        )
    if not parts and not member.isdir():
        raise UserError(f"{refused} is a file without a name")
    return parts


def _write(
    tar: tarfile.TarFile, member: tarfile.TarInfo, parts: tuple[str, ...], root: int, where: str
) -> None:
    """A folder made, or a new file written, strictly below `root` (see the docstring)."""
    folders = parts if member.isdir() else parts[:-1]
    folder = _enter(root, folders, member, where)
    try:
        if member.isdir():
            return
        try:
            fd = os.open(parts[-1], _NEW_FILE_FLAGS, 0o644, dir_fd=folder)
        except FileExistsError:
            raise UserError(
                f"{where} is refused: member {_shown(member.name)} would replace what "
                "an earlier member wrote"
            ) from None
        except (OSError, ValueError) as exc:
            raise _unwritable(member, where, exc) from exc
        source = tar.extractfile(member)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                shutil.copyfileobj(source, out, 1024 * 1024)
    finally:
        os.close(folder)


def _enter(root: int, folders: tuple[str, ...], member: tarfile.TarInfo, where: str) -> int:
    """A descriptor of the folder `root/folders...`, each made when missing and each
    entered without following a link: a path through anything but a folder is refused."""
    fd = os.dup(root)
    try:
        for depth, folder in enumerate(folders, 1):
            try:
                os.mkdir(folder, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            except (OSError, ValueError) as exc:
                raise _unwritable(member, where, exc) from exc
            try:
                inner = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise _unwritable(member, where, exc) from exc
                raise UserError(
                    f"{where} is refused: member {_shown(member.name)} would be written under "
                    f"{_shown('/'.join(folders[:depth]))}, which is not a folder"
                ) from exc
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _shown(name: str, limit: int = 120) -> str:
    """A member's name or link target for a message: quoted, cut short when long."""
    return (
        repr(name) if len(name) <= limit else repr(name[:limit]) + f"... ({len(name)} characters)"
    )


def _unwritable(member: tarfile.TarInfo, where: str, exc: Exception) -> UserError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return UserError(
        f"{where} is refused: member {_shown(member.name)} cannot be written: {reason}"
    )
