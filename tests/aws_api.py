"""Every request checked against the AWS API model's constraints, as AWS itself checks it.

botocore validates a request's types, its required members and `min` lengths before it
sends it; AWS checks far more: `max` lengths and counts, `pattern`s, enums, number
ranges. moto checks less still. So a request that passes botocore and moto can still be
refused by SageMaker (a hyperparameter value over 2500 characters, a 101st environment
variable, a metric regex over 500, an endpoint name with an underscore).

`problems(shape, value)` walks a request's parameters against the operation's input
shape from botocore's service model and names each violation by its path
(`CreateTrainingJob.HyperParameters.epochs: 2501 characters, at most 2500`).
`checked_clients()` wraps every botocore client call of the process with it: the test
session does that once (`aws_requests_checked` in tests/conftest.py), so every request a
test makes, the launcher's included, is checked before it reaches moto or a dry run's
recorder. A violation raises `AwsWouldRefuse` in the call and fails the test.

Patterns: AWS's are Java regular expressions, matched against the whole value (the
model's copies have lost their `^...$`, which the API reference shows). They are read
with the `regex` module (which knows `\\p{Print}`), Java's surrogate-pair ranges turned
into code point ranges; a pattern neither can read is left unchecked (`unreadable`).
Strings holding a dry run's `<placeholder>` (a role, an image or a model.tar.gz the dry
run had to stand in for, as written or URL-encoded by boto3) are not matched against
patterns or lengths: they never reach AWS.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.client
import botocore.session

try:  # knows \p{...} classes; transformers depends on it
    import regex as _regex
except ImportError:  # pragma: no cover
    _regex = None

# A dry run's stand-ins (launcher/dryrun.py, launcher/settings.py): `<role: ...>`.
_PLACEHOLDER = re.compile(r"<[^<>]+>|%3C.+?%3E")  # as written, or URL-encoded by boto3


class AwsWouldRefuse(AssertionError):
    """A request that botocore passes but the AWS API model's constraints refuse."""


@functools.cache
def service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


def input_shape(service: str, operation: str):
    return service_model(service).operation_model(operation).input_shape


def request_problems(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """What AWS would refuse in `operation`'s `params`: one line per violation."""
    shape = input_shape(service, operation)
    if shape is None:
        return [f"{operation}: takes no parameters"] if params else []
    return problems(shape, params, operation)


def problems(shape: Any, value: Any, path: str) -> list[str]:
    """Each way `value` breaks `shape` (type, required members, min/max, pattern, enum)."""
    if value is None:
        return []
    check = _CHECKS.get(shape.type_name)
    return check(shape, value, path) if check else []


def _structure(shape, value, path) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{path}: a {type(value).__name__}, expected a structure"]
    found = []
    for name in shape.required_members:
        if value.get(name) is None:
            found.append(f"{path}.{name}: required, missing")
    for name, member in value.items():
        if name not in shape.members:
            found.append(f"{path}.{name}: no such member")
            continue
        found += problems(shape.members[name], member, f"{path}.{name}")
    return found


def _list(shape, value, path) -> list[str]:
    if not isinstance(value, (list, tuple)):
        return [f"{path}: a {type(value).__name__}, expected a list"]
    found = _count(shape, len(value), path, "items")
    for i, item in enumerate(value):
        found += problems(shape.member, item, f"{path}[{i}]")
    return found


def _map(shape, value, path) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{path}: a {type(value).__name__}, expected a map"]
    found = _count(shape, len(value), path, "entries")
    for key, item in value.items():
        found += problems(shape.key, key, f"{path} key {key!r}")
        found += problems(shape.value, item, f"{path}.{key}")
    return found


def _count(shape, n: int, path: str, what: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and n < low:
        return [f"{path}: {n} {what}, at least {low}"]
    if high is not None and n > high:
        return [f"{path}: {n} {what}, at most {high}"]
    return []


def _string(shape, value, path) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: a {type(value).__name__}, expected a string"]
    # A stand-in's length says nothing of the value it stands for: its pattern and length
    # go unchecked (its type and enum still are).
    stand_in = bool(_PLACEHOLDER.search(value))
    found = [] if stand_in else _count(shape, len(value), path, "characters")
    enum = shape.enum
    if enum and value not in enum:
        found.append(f"{path}: {value!r} is not one of the {len(enum)} values the API lists")
    pattern = shape.metadata.get("pattern")
    if pattern and not stand_in:
        compiled = _pattern(pattern)
        if compiled is not None and not compiled.fullmatch(value):
            found.append(f"{path}: {value!r} does not match the pattern {pattern!r}")
    return found


def _number(shape, value, path) -> list[str]:
    integral = shape.type_name in ("integer", "long")
    kinds = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        return [f"{path}: {value!r}, expected {'a whole number' if integral else 'a number'}"]
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        return [f"{path}: {value}, at least {low}"]
    if high is not None and value > high:
        return [f"{path}: {value}, at most {high}"]
    return []


def _boolean(shape, value, path) -> list[str]:
    return [] if isinstance(value, bool) else [f"{path}: {value!r}, expected true or false"]


def _blob(shape, value, path) -> list[str]:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return _count(shape, len(value), path, "bytes")
    return []  # a stream: its size is not known here


_CHECKS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _number,
    "long": _number,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "blob": _blob,
}

# Java spells a code point above U+FFFF as its UTF-16 surrogates: \uD800\uDC00-\uDBFF\uDFFF.
_SURROGATE_RANGE = re.compile(
    r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})-\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})",
    re.IGNORECASE,
)


def _code_point(high: str, low: str) -> int:
    return 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)


@functools.cache
def _pattern(pattern: str):
    """The compiled pattern, or None where neither `re` nor `regex` reads it (unchecked)."""

    def as_code_points(m: re.Match) -> str:
        start, end = _code_point(m[1], m[2]), _code_point(m[3], m[4])
        return f"\\U{start:08X}-\\U{end:08X}"

    # Java's end of input is \z; Python's \Z.
    text = _SURROGATE_RANGE.sub(as_code_points, pattern).replace(r"\z", r"\Z")
    for engine in (re, _regex):
        if engine is None:
            continue
        try:
            return engine.compile(text)
        except Exception:
            continue
    return None


def unreadable(pattern: str) -> bool:
    return _pattern(pattern) is None


# --- every client call of the process -------------------------------------------------------
_found: list[str] = []
_lock = threading.Lock()
_off = threading.Event()


def violations() -> list[str]:
    """What the checked calls found since the last `reset()`."""
    with _lock:
        return list(_found)


def reset() -> None:
    with _lock:
        _found.clear()


@contextlib.contextmanager
def checked_clients() -> Iterator[None]:
    """Every botocore client call checks its parameters first (raises AwsWouldRefuse):
    as they will be sent, after the handlers boto3 and botocore hook onto the parameters
    (boto3 writes S3's CopySource {"Bucket", "Key"} as the string the API takes)."""
    original = botocore.client.BaseClient._emit_api_params

    def emit(self, api_params, operation_model, context):
        api_params = original(self, api_params, operation_model, context)
        if not _off.is_set():
            found = request_problems(
                self.meta.service_model.service_name, operation_model.name, api_params
            )
            if found:
                with _lock:
                    _found.extend(found)
                raise AwsWouldRefuse("AWS would refuse this request: " + "; ".join(found))
        return api_params

    botocore.client.BaseClient._emit_api_params = emit
    try:
        yield
    finally:
        botocore.client.BaseClient._emit_api_params = original


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """For a test that sends a request AWS would refuse on purpose."""
    _off.set()
    try:
        yield
    finally:
        _off.clear()
