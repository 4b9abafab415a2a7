"""Request bodies of any content type: what a file is, and whether a plug-in takes it.

The serving container answers the Content-Types its plug-in declares
(`Plugin.content_types`: JSON, CSV, text, but just as well `image/png` or
`application/x-npy`), so the launcher passes any well-formed media type through and
never decodes a file: bytes in, bytes out. A file's type comes from its extension, by
this module's table first (types SageMaker's containers use that Python's table lacks or
spells otherwise), then Python's built-in `mimetypes` table (never the machine's
/etc/mime.types, so the answer is the same on every laptop).

Batch transform cuts line-oriented types (`LINE_TYPES`) at newlines; every other type is
one record per S3 object.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from sagemaker_platform import codecs

from .settings import LauncherError

JSON = codecs.JSON
JSONLINES = codecs.JSONLINES
CSV = codecs.CSV
TEXT = codecs.TEXT
# Formats whose records are lines: batch transform splits them (SplitType Line).
LINE_TYPES = (JSONLINES, CSV)

# By extension, before Python's table: the types the platform's codecs read, and binary
# formats models take whose extension Python's table does not know.
_BY_EXTENSION = {
    ".json": JSON,
    ".jsonl": JSONLINES,
    ".jsonlines": JSONLINES,
    ".csv": CSV,
    ".txt": TEXT,
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".npy": "application/x-npy",
    ".npz": "application/x-npz",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".parquet": "application/x-parquet",
    ".recordio": "application/x-recordio",
}
_PYTHON_TABLE = mimetypes.MimeTypes()  # the built-in table only: no system files read

# type/subtype, each an RFC 9110 token, then any parameters (`; charset=utf-8`).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\r\n]*\"))*$")
MAX_CONTENT_TYPE = 256  # TransformInput.ContentType; InvokeEndpoint takes up to 1024


def content_type_for(path: str | Path) -> str:
    """The content type of a payload file, from its extension."""
    suffix = Path(path).suffix.lower()
    found = _BY_EXTENSION.get(suffix)
    if found is None and suffix:
        found = _PYTHON_TABLE.types_map[True].get(suffix) or _PYTHON_TABLE.types_map[False].get(
            suffix
        )
    if found is None:
        raise LauncherError(
            f"cannot tell the content type of {str(path)!r} from its extension; pass "
            "--content-type (content_type= in Python), e.g. image/png or application/json"
        )
    return found


def extension_for(content_type: str) -> str:
    """A file extension for `content_type` (`.png`), or "" when none is known."""
    kind = codecs.media_type(content_type)
    for suffix, known in _BY_EXTENSION.items():
        if known == kind:
            return suffix
    return _PYTHON_TABLE.guess_extension(kind, strict=False) or ""


def check_content_type(value: str, what: str = "content type") -> str:
    """`value` if it is a well-formed media type, else LauncherError naming `what`."""
    if not isinstance(value, str) or not _MEDIA_TYPE.match(value.strip()):
        raise LauncherError(
            f"{what} {value!r} is not a media type: expected type/subtype, e.g. "
            "application/json or image/png"
        )
    if len(value) > MAX_CONTENT_TYPE:
        raise LauncherError(f"{what}: {len(value)} characters, at most {MAX_CONTENT_TYPE}")
    return value.strip()


def is_line_type(content_type: str) -> bool:
    """True for formats batch transform splits at newlines (JSON Lines, CSV)."""
    return codecs.media_type(content_type) in LINE_TYPES


def is_text(body: bytes) -> bool:
    """Whether `body` reads as text: UTF-8 with no NUL byte (then a terminal may show it)."""
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the plug-in's declared types ----------------------------------------------------------
def plugin_types(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(content types, accept types) that plug-in `name` declares, loaded locally."""
    from sagemaker_platform import registry
    from sagemaker_platform.errors import UserError

    try:
        plugin = registry.load(name)
    except UserError as exc:
        raise LauncherError(str(exc)) from None
    return tuple(plugin.content_types), tuple(plugin.accept_types)


def check_plugin_takes(plugin: str, content_type: str) -> None:
    """Refuse a request type that plug-in `plugin` does not declare it reads."""
    takes, _ = plugin_types(plugin)
    kind = codecs.media_type(content_type)
    if kind not in takes:
        raise LauncherError(
            f"content type {kind!r}: plug-in {plugin} reads {', '.join(takes)} "
            "(its Plugin.content_types)"
        )


def check_plugin_answers(plugin: str, accept: str) -> None:
    """Refuse an answer type that plug-in `plugin` does not write. An Accept that
    negotiates (`*/*`, a list, q-values) is left to the server."""
    if any(mark in accept for mark in ("*", ",", ";")):
        return
    _, answers = plugin_types(plugin)
    kind = codecs.media_type(accept)
    if kind not in answers:
        raise LauncherError(
            f"accept {kind!r}: plug-in {plugin} answers {', '.join(answers)} "
            "(its Plugin.accept_types)"
        )
