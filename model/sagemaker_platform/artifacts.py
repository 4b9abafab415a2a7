"""The model directory's platform part: the weights and the manifest, for every plug-in.

    model/
      plugin.json   which plug-in wrote it: {"plugin": "tabular", "module": ..., ...}
      model.ckpt    the best epoch's Lightning checkpoint, plain contents only
                    (state_dict, hyper_parameters, epoch, step): torch.load(weights_only=True)
      ...           whatever the plug-in's `export` wrote beside them

SageMaker tars this folder into model.tar.gz and untars it in the serving container,
where `serve` reads plugin.json to know which plug-in loads the rest.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from .errors import UserError

CHECKPOINT = "model.ckpt"
MANIFEST = "plugin.json"
FORMAT_VERSION = 1

# The keys of a Lightning checkpoint that serving or a resumed fine-tune may need;
# optimizer and loop state stay in checkpoints/, not in the model.
_KEEP = ("state_dict", "hyper_parameters", "epoch", "global_step", "pytorch-lightning_version")

# The model directory's JSON files are small: plugin.json, network.json, classifier.json and
# preprocessing.json a few hundred bytes; labels.json and schema.json a line for each class
# or category (20 bytes for a category of 10 characters: 400,000 of them fit). One larger
# is refused before it is read: parsed, JSON takes up to 25 times its size in memory, and
# a multi-model endpoint reads it in a worker that serves other models (a GB of zeros
# gzips to a MB of model.tar.gz). The tokenizer's tokenizer.json, which the tokenizers
# library reads, is not held to it.
MAX_JSON_BYTES = 8 * 2**20

# model.ckpt's zip directory: under 100 bytes a tensor, so over 40,000 tensors. Python's
# zipfile parses it before the model is weighed (a ZipInfo of 500 bytes for each entry of
# 46 bytes or more, 200,000 entries a second): a bigger one is refused unparsed.
MAX_CHECKPOINT_DIRECTORY_BYTES = 4 * 2**20


def _plain(value: Any) -> Any:
    """Values torch.load(weights_only=True) accepts: no custom classes."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a tensor
        return value
    return str(value)


def write_weights(out: Path, checkpoint: dict[str, Any]) -> None:
    """model.ckpt: the plain, weights-only part of a Lightning checkpoint."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    plain = {k: _plain(checkpoint[k]) for k in _KEEP if k in checkpoint}
    plain["state_dict"] = {k: v.detach().cpu() for k, v in checkpoint["state_dict"].items()}
    torch.save(plain, out / CHECKPOINT)


def write_manifest(out: Path, plugin: str, module: str) -> None:
    manifest = {"format_version": FORMAT_VERSION, "plugin": plugin, "module": module}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def read_json(path: Path, expect: type | None = None) -> Any:
    """A JSON file of the model directory, holding an `expect` (dict, list) when given;
    a UserError naming it when missing, broken or of another shape."""
    data = _read_small(path, MAX_JSON_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is int()'s refusal
        # of a number of over 4300 digits, which is not a JSONDecodeError
        raise UserError(
            f"model directory is corrupt: {path.name} is not valid JSON ({exc})"
        ) from exc
    except RecursionError:
        raise UserError(f"model directory is corrupt: {path.name} is nested too deeply") from None
    if expect is not None and not isinstance(value, expect):
        shape = {dict: "a JSON object", list: "a JSON list"}.get(expect, expect.__name__)
        raise UserError(
            f"model directory is corrupt: {path.name} must hold {shape}, not {type(value).__name__}"
        )
    return value


def _read_small(path: Path, limit: int) -> bytes:
    """`path`'s bytes: a UserError naming it when it is missing, not a regular file (a fifo
    would block the read, a device never end it) or over `limit` bytes, its size looked at
    before it is opened. The read stops past `limit` all the same: a file may grow, and one
    in /proc says 0 bytes."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(
            f"model directory is incomplete: {path.name} is missing from {path.parent}"
        ) from None
    except OSError as exc:  # a loop of links, no permission
        raise corrupt(path.name, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise corrupt(path.name, "is not a regular file")
    too_big = corrupt(
        path.name, f"is over {limit / 2**20:g} MB, the most a model directory's JSON file may be"
    )
    if info.st_size > limit:
        raise too_big
    try:
        # O_NONBLOCK: a file swapped for a fifo since the stat must not block the open
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise corrupt(path.name, f"cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise too_big
    return data


def check_labels(labels: Any, where: str) -> list[str | int]:
    """A classifier's labels as read back: a non-empty list of distinct strings or integers
    (a null or an object in labels.json must never be answered as a class)."""
    if (
        not isinstance(labels, list | tuple)
        or not labels
        or not all(type(x) in (str, int) for x in labels)
        or len(set(labels)) < len(labels)
    ):
        raise UserError(
            f"model directory is corrupt: {where} must list distinct labels, "
            "each a string or an integer"
        )
    return list(labels)


# --- values in the model directory's JSON ------------------------------------------------
# Each returns the value when it is of the expected type and range, else raises a
# UserError `model directory is corrupt: <where> is <value>, expected <what>`, where
# `where` names the file and the key (`schema.json: numeric[0].std`). Booleans are
# neither integers nor numbers here, though Python counts them as both.
def corrupt(where: str, problem: str) -> UserError:
    """The error for a bad model directory: `model directory is corrupt: <where> <problem>`
    (raise it; `serve` stops at start with it, a multi-model load answers 400)."""
    return UserError(f"model directory is corrupt: {where} {problem}")


def shown(value: Any, limit: int = 60) -> str:
    """`value`'s repr, cut to `limit` characters: a hostile value stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    """An exception's message as one line: its first, or its type's name when empty."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _bad(value: Any, where: str, expected: str) -> UserError:
    return corrupt(where, f"is {shown(value)}, expected {expected}")


def member(doc: Any, key: str, where: str) -> Any:
    """`doc[key]`, where `doc` must be a JSON object; `where` names `doc` (`schema.json`,
    `schema.json: numeric[0]`)."""
    if not isinstance(doc, dict):
        raise _bad(doc, where, "a JSON object")
    if key not in doc:
        raise corrupt(where, f"lacks {key!r}")
    return doc[key]


def check_int(value: Any, where: str, lo: int, hi: int) -> int:
    """An integer from `lo` to `hi` (not a bool, not a float); else `corrupt` naming `where`."""
    if type(value) is not int or not lo <= value <= hi:
        raise _bad(value, where, f"an integer from {lo} to {hi}")
    return value


def check_number(
    value: Any, where: str, lo: float | None = None, hi: float | None = None, positive=False
) -> float:
    """A finite number (above 0 with `positive`; at least `lo`, at most `hi`), as a float."""
    expected = "a finite number" + (" above 0" if positive else "")
    if lo is not None and hi is not None:
        expected += f" from {lo:g} to {hi:g}"
    elif lo is not None:
        expected += f" of at least {lo:g}"
    elif hi is not None:
        expected += f" of at most {hi:g}"
    if type(value) not in (int, float):
        raise _bad(value, where, expected)
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise _bad(value, where, expected) from None
    if (
        not math.isfinite(number)
        or (positive and number <= 0)
        or (lo is not None and number < lo)
        or (hi is not None and number > hi)
    ):
        raise _bad(value, where, expected)
    return number


def check_str(value: Any, where: str, empty: bool = False) -> str:
    """A string, non-empty unless `empty`; else `corrupt` naming `where`."""
    if not isinstance(value, str) or not (empty or value):
        raise _bad(value, where, "a string" if empty else "a non-empty string")
    return value


def check_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    """One of `choices`; else `corrupt` naming `where` and listing them."""
    if not isinstance(value, str) or value not in choices:
        raise _bad(value, where, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_list(value: Any, where: str) -> list:
    """A JSON list; else `corrupt` naming `where`."""
    if not isinstance(value, list):
        raise _bad(value, where, "a JSON list")
    return value


def check_distinct(values: list, where: str) -> list:
    """`values` with no value twice (in one pass); else `corrupt` naming the repeat."""
    seen: set = set()
    for value in values:
        if value in seen:
            raise corrupt(where, f"lists {shown(value)} twice")
        seen.add(value)
    return values


# Model directories written before plugin.json existed: the text classifier's.
_LEGACY_MARKER = "classifier.json"
_LEGACY = {"plugin": "text_classifier", "module": "plugins.text_classifier"}


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """plugin.json: which plug-in loads this model directory."""
    if not model_dir.is_dir():
        raise UserError(f"no model directory at {model_dir}; run training first")
    if not (model_dir / MANIFEST).exists() and (model_dir / _LEGACY_MARKER).is_file():
        return {"format_version": FORMAT_VERSION, **_LEGACY}
    manifest = read_json(model_dir / MANIFEST, expect=dict)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("module"), str):
        raise UserError(f"model directory is corrupt: {MANIFEST} names no plug-in module")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"model directory has format {shown(manifest.get('format_version'))}, "
            f"expected {FORMAT_VERSION}"
        )
    return manifest


# torch.save's zip, as its reader (miniz) and Python's zipfile both find it: the members,
# stored; the central directory; a zip64 end record and its locator (torch always writes
# them); the end record, without a comment. The structs: each record's fields in order.
_END = struct.Struct("<4s4H2LH")  # PK56; disks; entries; directory size, offset; comment
_LOCATOR = struct.Struct("<4sLQL")  # PK67; disk; the zip64 end record's offset; disks
_END64 = struct.Struct("<4sQ2H2L4Q")  # PK66; ...; entries; directory size, offset
_FULL32 = 0xFFFFFFFF  # a 32-bit field whose value is in the zip64 record


def _zip_directory(f: BinaryIO) -> tuple[int, int] | None:
    """(offset, size) of the central directory of the zip `f`, from its end records; None
    when it does not end in an end record without a comment. A UserError when the records
    disagree, or the directory is not right before them: two readers could then find two
    directories, a stored one for this check and a compressed one for torch.load."""
    end_at = f.seek(0, os.SEEK_END) - _END.size
    if end_at < 0:
        return None
    f.seek(end_at)
    sig, _, _, _, _, size, offset, comment = _END.unpack(f.read(_END.size))
    if sig != b"PK\x05\x06" or comment:
        return None
    records_at = end_at
    if end_at >= _LOCATOR.size + _END64.size:
        f.seek(end_at - _LOCATOR.size)
        sig, _, record_at, _ = _LOCATOR.unpack(f.read(_LOCATOR.size))
        if sig == b"PK\x06\x07":
            records_at = end_at - _LOCATOR.size - _END64.size  # where zipfile reads it
            f.seek(records_at)
            record = _END64.unpack(f.read(_END64.size))
            size64, offset64 = record[-2:]
            if (
                record_at != records_at  # where miniz reads it
                or record[0] != b"PK\x06\x06"
                or size not in (size64, _FULL32)
                or offset not in (offset64, _FULL32)
            ):
                raise corrupt(CHECKPOINT, "is not a torch checkpoint (its zip64 records disagree)")
            size, offset = size64, offset64
    if offset + size != records_at:
        raise corrupt(CHECKPOINT, "is not a torch checkpoint (its zip directory is misplaced)")
    return offset, size


def checkpoint_members(model_dir: Path) -> list[zipfile.ZipInfo]:
    """model.ckpt's members, as its zip's central directory lists them: what torch.load
    reads, and how (`compress_type`, `file_size` once read). Nothing beyond the end records
    and the directory is read. A UserError when it is missing or not a torch checkpoint,
    or its directory is over MAX_CHECKPOINT_DIRECTORY_BYTES."""
    ckpt = model_dir / CHECKPOINT
    if not ckpt.is_file():
        raise UserError(f"model directory is incomplete: {CHECKPOINT} is missing from {model_dir}")
    not_torch = corrupt(CHECKPOINT, "is not a torch checkpoint")
    try:
        with open(ckpt, "rb") as f:
            directory = _zip_directory(f)
            if directory is None:
                raise not_torch
            if directory[1] > MAX_CHECKPOINT_DIRECTORY_BYTES:
                raise corrupt(
                    CHECKPOINT,
                    f"has a zip directory of {directory[1] / 2**20:.1f} MB, over the "
                    f"{MAX_CHECKPOINT_DIRECTORY_BYTES >> 20} MB a checkpoint's may be",
                )
            with zipfile.ZipFile(f) as archive:
                return archive.infolist()
    except (OSError, ValueError, EOFError, struct.error, zipfile.BadZipFile):
        # ValueError: a member's name of invalid UTF-8, among others
        raise not_torch from None


def check_weights(model_dir: Path) -> None:
    """Without torch: model.ckpt is there and is a torch (zip) checkpoint whose members are
    stored, as torch.save writes them. torch.load also reads DEFLATE-compressed members:
    a MB of checkpoint could then be a GB in memory, past any budget of the sizes on disk."""
    for info in checkpoint_members(model_dir):
        if info.compress_type != zipfile.ZIP_STORED:
            raise corrupt(
                CHECKPOINT,
                f"member {shown(info.filename)} is compressed; torch.save writes them stored",
            )


def checkpoint_bytes(model_dir: Path) -> int:
    """What model.ckpt's members take once read (their uncompressed sizes), from its zip
    directory alone; a UserError as `checkpoint_members`."""
    return sum(info.file_size for info in checkpoint_members(model_dir))


def load_checkpoint(model_dir: Path) -> dict[str, Any]:
    """model.ckpt, loaded weights-only (no pickled code can run)."""
    import torch

    try:
        return torch.load(model_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    except Exception as exc:
        # first_line: a pickle cut short raises EOFError(''), a message of no lines
        raise UserError(f"cannot load {CHECKPOINT}: {first_line(exc)}") from exc


def load_state_dict(model_dir: Path, prefix: str = "") -> dict[str, Any]:
    """The weights saved in model.ckpt whose names start with `prefix`, without it: with
    `prefix="network."`, those of the LightningModule's `self.network`."""
    state = load_checkpoint(model_dir)["state_dict"]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
