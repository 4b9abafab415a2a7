"""Content types in and out: request bodies to texts, predictions to response bodies.

Decoders and encoders are plain functions dispatched through dicts, testable without
HTTP. Anything wrong with a request raises `HTTPError` with the status to answer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
TEXT = "text/plain"
# Aliases seen in the wild (and in SageMaker's own toolkits).
_ALIASES = {
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "text/jsonl": JSONLINES,
}
_TEXT_KEYS = ("inputs", "text")


class HTTPError(Exception):
    """A request problem that knows its HTTP status; the message is safe to show."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`."""
    base = (header or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"body is not valid UTF-8 (byte {exc.start})") from None


def _one_text(value: Any, where: str) -> str:
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                return _one_text(value[key], f"{where}.{key}")
        raise HTTPError(400, f"{where} is an object without an 'inputs' or 'text' field")
    if not isinstance(value, str):
        raise HTTPError(400, f"{where} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise HTTPError(400, f"{where} is an empty string")
    try:  # JSON may escape lone surrogates ("\\ud800"); the tokenizer cannot take them
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HTTPError(
            400, f"{where} is not valid Unicode (a lone surrogate at character {exc.start})"
        ) from None
    return value


def _json_value(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise HTTPError(400, f"{where} is nested too deeply") from None
    except ValueError as exc:
        raise HTTPError(400, f"{where} is not valid JSON: {exc}") from None


def decode_json(body: bytes) -> list[str]:
    payload = _json_value(_text(body), "body")
    if isinstance(payload, dict):
        for key in ("inputs", "instances", "text"):
            if key in payload:
                payload = payload[key]
                break
        else:
            raise HTTPError(400, "JSON object needs an 'inputs' (or 'instances') field")
    if isinstance(payload, list):
        if not payload:
            raise HTTPError(400, "inputs is an empty list")
        return [_one_text(v, f"inputs[{i}]") for i, v in enumerate(payload)]
    return [_one_text(payload, "inputs")]


def decode_jsonlines(body: bytes) -> list[str]:
    # Records end at \n only (JSON escapes it inside strings). str.splitlines() would
    # also split at \x85, \u2028 and the like, which JSON leaves raw inside strings.
    lines = _text(body).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing newline is not a record
    if not lines:
        raise HTTPError(400, "body has no JSON Lines records")
    return [
        _one_text(_json_value(line, f"line {i + 1}"), f"line {i + 1}")
        for i, line in enumerate(lines)
    ]


# Python's csv reader ends a record at any CR, but records end at LF (or CRLF) here, as
# in batch transform's SplitType=Line: a lone CR is text. It travels through the parser
# as this private-use character, and back (bodies that contain it are parsed as they are).
_LONE_CR = "\ue000"


def decode_csv(body: bytes) -> list[str]:
    text = _text(body)
    hide = _LONE_CR not in text
    if hide:
        text = text.replace("\r\n", "\n").replace("\r", _LONE_CR)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise HTTPError(400, f"body is not valid CSV: {exc}") from None
    if hide:
        rows = [[field.replace(_LONE_CR, "\r") for field in row] for row in rows]
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        raise HTTPError(400, "body has no CSV rows")
    texts = []
    for i, row in enumerate(rows):
        if len(row) != 1:
            raise HTTPError(
                400, f"CSV row {i + 1} has {len(row)} columns; expected one text per row"
            )
        texts.append(_one_text(row[0], f"CSV row {i + 1}"))
    return texts


def decode_text(body: bytes) -> list[str]:
    return [_one_text(_text(body), "body")]


DECODERS: dict[str, Callable[[bytes], list[str]]] = {
    JSON: decode_json,
    JSONLINES: decode_jsonlines,
    CSV: decode_csv,
    TEXT: decode_text,
}


def decode(body: bytes, content_type: str | None) -> list[str]:
    kind = media_type(content_type) or JSON
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise HTTPError(415, f"unsupported Content-Type {kind!r}; use one of {', '.join(DECODERS)}")
    if not body:
        raise HTTPError(400, "request body is empty")
    return decoder(body)


# --- responses -------------------------------------------------------------------------
def records(probabilities, labels: Sequence) -> list[dict[str, Any]]:
    """One record per input: the top label, its score, every class's probability."""
    out = []
    keys = [str(label) for label in labels]
    for row in probabilities:
        row = [float(p) for p in row]
        best = max(range(len(row)), key=row.__getitem__)
        out.append(
            {
                "label": labels[best],
                "score": round(row[best], 6),
                "probabilities": {k: round(p, 6) for k, p in zip(keys, row, strict=True)},
            }
        )
    return out


def encode_json(recs: list[dict]) -> str:
    return json.dumps({"predictions": recs})


def encode_jsonlines(recs: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in recs)


def encode_csv(recs: list[dict]) -> str:
    """`label,score,p_<class>...` per line, no header: one line per input line, so that
    batch transform's AssembleWith=Line joins them back in order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for r in recs:
        writer.writerow([r["label"], r["score"], *r["probabilities"].values()])
    return buf.getvalue()


ENCODERS: dict[str, Callable[[list[dict]], str]] = {
    JSON: encode_json,
    JSONLINES: encode_jsonlines,
    CSV: encode_csv,
}


def choose_accept(header: str | None) -> str:
    """The best supported type in an Accept header (q-values honoured); 406 if none."""
    if not header or not header.strip():
        return JSON
    candidates = []
    for position, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        kind = media_type(fields[0])
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > 0:  # q=0 means "not this one"
            candidates.append((-q, position, kind))
    for _, _, kind in sorted(candidates):
        if kind in ("*/*", "application/*", ""):
            return JSON
        if kind == "text/*":
            return CSV
        if kind in ENCODERS:
            return kind
    raise HTTPError(406, f"unsupported Accept {header!r}; use one of {', '.join(ENCODERS)}")


def encode(recs: list[dict], accept: str) -> str:
    return ENCODERS[accept](recs)
