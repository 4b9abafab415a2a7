"""Content types in and out, for every plug-in: parsing bodies, writing answers.

Plug-ins build their `decode` and `encode` from these plain functions (testable without
HTTP). Anything wrong with a request raises `HTTPError` with the status to answer; the
message is shown to the client, so it names what is wrong and where.

The record limit (MODEL_SERVER_MAX_RECORDS) is enforced while a body is parsed, not after:
the service runs a plug-in's `decode` inside `request_limits(...)`, and within it
`csv_rows`, `jsonlines_values` and `json_records` refuse a body of more records with a
413 before building them (CSV and JSON Lines count their lines first where each line is
a record; a JSON list is measured before any of its records is checked). A plug-in that
parses bodies its own way calls `check_records(len(records))` as soon as it knows the
count; the service checks the count `decode` returns again either way.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .contract import MAX_RECORDS_ENV

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
# The keys a JSON body may wrap its records in, as SageMaker's toolkits and TF Serving do.
RECORD_KEYS = ("instances", "inputs")


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


# A media type is `type/subtype`, each an RFC 9110 token.
_TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"


def _well_formed(kind: str) -> bool:
    top, slash, sub = kind.partition("/")
    return bool(slash and top and sub) and all(c in _TOKEN for c in top + sub)


# --- what the service tells the parsers about a request ---------------------------------
@dataclass(frozen=True)
class RequestLimits:
    """How the helpers here read a request's body (`request_limits`)."""

    max_records: int | None = None  # more is a 413 (MODEL_SERVER_MAX_RECORDS); None: any
    # Under batch transform SageMaker splits the input at newlines (SplitType=Line)
    # whatever the quoting, so each line is one record there; elsewhere a quoted CSV
    # field may hold a newline.
    one_record_per_line: bool = False


_NONE = RequestLimits()  # frozen: a safe default for every context
_limits: ContextVar[RequestLimits] = ContextVar("request_limits", default=_NONE)


@contextlib.contextmanager
def request_limits(
    max_records: int | None = None, one_record_per_line: bool = False
) -> Iterator[None]:
    """Within this block (the service's call to a plug-in's `decode`), the helpers here
    refuse a body of more than `max_records` records, and with `one_record_per_line`
    read each line of a CSV body as one record (`csv_rows`)."""
    token = _limits.set(RequestLimits(max_records, one_record_per_line))
    try:
        yield
    finally:
        _limits.reset(token)


def too_many_records(limit: int, count: int | None = None) -> HTTPError:
    """The 413 for a request over the record limit; `count` when it is known."""
    held = f"{count} records, more than" if count is not None else "more records than"
    return HTTPError(
        413,
        f"the request holds {held} {MAX_RECORDS_ENV}={limit}; send fewer per request "
        "(batch transform: a smaller MaxPayloadInMB)",
    )


def check_records(count: int, limit: int | None = None) -> None:
    """A 413 if `count` records are over `limit` (by default: the request's, `request_limits`)."""
    limit = _limits.get().max_records if limit is None else limit
    if limit is not None and count > limit:
        raise too_many_records(limit, count)


# --- request bodies --------------------------------------------------------------------
def body_text(body: bytes) -> str:
    """The body as UTF-8 text (a leading byte-order mark dropped); a 400 naming the first
    byte that is not UTF-8."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"body is not valid UTF-8 (byte {exc.start})") from None


def parse_json(text: str, where: str = "body") -> Any:
    """`text` parsed as JSON; a 400 naming `where` when it is not JSON or nests too deep."""
    try:
        return json.loads(text)
    except RecursionError:
        raise HTTPError(400, f"{where} is nested too deeply") from None
    except ValueError as exc:
        raise HTTPError(400, f"{where} is not valid JSON: {exc}") from None


def jsonlines_values(body: bytes) -> list[Any]:
    """One JSON value per line. Records end at \\n only (JSON escapes it inside strings):
    str.splitlines() would also split at \\x85, \\u2028 and the like, which JSON leaves
    raw inside strings. Trailing blank lines are not records; the lines are counted
    against the record limit before any is parsed."""
    text = body_text(body)
    last = len(text.rstrip())  # the end of the last line with more than whitespace
    if not last:
        raise HTTPError(400, "body has no JSON Lines records")
    end = text.find("\n", last)
    text = text[: end if end >= 0 else len(text)]
    check_records(text.count("\n") + 1)
    return [parse_json(line, f"line {i + 1}") for i, line in enumerate(text.split("\n"))]


def json_records(body: bytes, keys: Sequence[str] = RECORD_KEYS) -> list[Any] | Any:
    """A JSON body's records: the list under one of `keys` (`{"instances": [...]}`; one
    value there is one record), a top-level list (each item a record: `[0.1, 0.2]` is two
    records, not one vector), or else the value itself, an object without those keys
    included (the caller decides what a single value means)."""
    payload = parse_json(body_text(body))
    if isinstance(payload, dict):
        for key in keys:
            if key in payload:
                payload = payload[key]
                if not isinstance(payload, list):
                    return [payload]
                break
    if isinstance(payload, list):
        if not payload:
            raise HTTPError(400, "the request holds an empty list of records")
        check_records(len(payload))
    return payload


# Python's csv reader ends a record at any CR, but records end at LF (or CRLF) here, as
# in batch transform's SplitType=Line: a lone CR is text. It travels through the parser
# as this private-use character, and back (bodies that contain it are parsed as they are).
_LONE_CR = "\ue000"


def csv_rows(
    body: bytes, one_per_line: bool | None = None, header: Sequence[str] | None = None
) -> list[list[str]]:
    """The body's CSV rows (no header is assumed), trailing empty lines dropped.

    With `one_per_line` (by default: under batch transform) each line is one row
    whatever its quotes, so that the answer has a line for each line of the input; a
    quote a line leaves open closes at its end. Otherwise a quoted field may span
    lines, and a quote never closed is a 400 naming the line it opens on, rather than
    one record swallowing every line after it (as is text after a closing quote).

    The rows are counted against the record limit (`max_records`), a first row equal
    to `header` (column names, which the caller drops) not counted: by their lines
    before parsing where each line is a row (one per line, or no quote in the body),
    else as they are parsed, stopping at the first row over the limit."""
    text = body_text(body)
    hide = _LONE_CR not in text
    if hide:
        # trailing newlines end the last row or make empty ones: never records
        text = text.replace("\r\n", "\n").replace("\r", _LONE_CR).rstrip("\n")
    else:  # the reader ends rows at a CR too (a line of CRs is an empty row)
        text = text.rstrip("\r\n")
    limits = _limits.get()
    by_line = limits.one_record_per_line if one_per_line is None else one_per_line
    limit = limits.max_records
    allowed = None if limit is None else limit + (1 if header is not None else 0)
    if allowed is not None and text and (by_line or (hide and '"' not in text)):
        lines = text.count("\n") + 1  # exactly the rows: each line is one
        if lines > allowed:
            named = header is not None and _first_row(text) == list(header)
            raise too_many_records(limit, lines - named)
    rows = _rows_by_line(text) if by_line else _rows(text, allowed, limit)
    if hide:
        rows = [[field.replace(_LONE_CR, "\r") for field in row] for row in rows]
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        raise HTTPError(400, "body has no CSV rows")
    if limit is not None:
        check_records(len(rows) - (header is not None and rows[0] == list(header)), limit)
    return rows


def _first_row(text: str) -> list[str] | None:
    """The first line's fields (lone CRs shown as they came), or None if it is not CSV."""
    try:
        fields = next(csv.reader([text.partition("\n")[0]]), [])
    except csv.Error:
        return None
    return [field.replace(_LONE_CR, "\r") for field in fields]


def _rows_by_line(text: str) -> list[list[str]]:
    lines = text.split("\n") if text else []
    try:
        return [next(csv.reader([line]), []) for line in lines]
    except csv.Error as exc:
        raise HTTPError(400, f"body is not valid CSV: {exc}") from None


def _rows(text: str, allowed: int | None = None, limit: int = 0) -> list[list[str]]:
    """Rows that may span lines; a row past the first `allowed` is a 413 (`limit`)."""
    # strict: a quote never closed, or text after a closing quote, is an error (RFC 4180)
    # instead of a field that runs on over the lines after it.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, start = [], 1  # the line the next row begins on
    try:
        for row in reader:
            if allowed is not None and len(rows) == allowed:
                raise too_many_records(limit)
            rows.append(row)
            start = reader.line_num + 1
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":
            raise HTTPError(400, f"CSV line {start} opens a quote that is never closed") from None
        where = f" (in a quoted field from line {start})" if start < reader.line_num else ""
        raise HTTPError(400, f"CSV line {reader.line_num} is not valid CSV: {exc}{where}") from None
    return rows


def decode_records(body: bytes, content_type: str) -> list[Any]:
    """The default decoder: JSON (see `json_records`) or JSON Lines, one record each."""
    if content_type == JSONLINES:
        return jsonlines_values(body)
    records = json_records(body)
    return records if isinstance(records, list) else [records]


def parse_options(header: str | None, limit: int = 1024) -> dict[str, str]:
    """`X-Amzn-SageMaker-Custom-Attributes: top_k=3; trace=abc` -> {"top_k": "3", ...}.

    SageMaker passes the header through as the client sent it (at most 1024 characters).
    Pairs are separated by `;` or `,`; a part without `=` is kept with an empty value.
    Plug-ins read the keys they know and ignore the rest (clients add their own)."""
    if not header:
        return {}
    if len(header) > limit:
        raise HTTPError(400, f"X-Amzn-SageMaker-Custom-Attributes is over {limit} characters")
    options = {}
    for part in header.replace(",", ";").split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            options[key.strip().lower()] = value.strip()
    return options


def int_option(options: Mapping[str, str], key: str, lo: int, hi: int) -> int | None:
    """An integer option from `lo` to `hi`, or None when absent; a 400 naming it if bad."""
    raw = options.get(key)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise HTTPError(400, f"custom attribute {key}={raw!r} must be an integer from {lo} to {hi}")
    return value


# --- classifiers' answers --------------------------------------------------------------
ID_KEY = "id"  # a record's own id, echoed first in its answer


def record_id(record: Mapping[str, Any], where: str) -> str | int | float | bool | None:
    """`record`'s `id` (None without one): a string, a number, true or false; a 400 for
    a list or an object, which the answer would echo (one nested 500 deep made the
    answer's JSON fail to write: a 500, where the request was at fault)."""
    value = record.get(ID_KEY)
    if isinstance(value, (list, dict)):
        kind = "list" if isinstance(value, list) else "object"
        raise HTTPError(400, f"{where}.{ID_KEY} is a JSON {kind}; an id is a string or a number")
    return value


MAX_TOP_K = 1000


def top_k(options: Mapping[str, str], num_labels: int) -> int | None:
    """The custom attribute `top_k=K`: 1 to the number of labels, or None; else a 400."""
    return int_option(options, "top_k", 1, min(num_labels, MAX_TOP_K))


def class_answer(
    probabilities: Sequence[float], labels: Sequence, k: int | None = None, record_id: Any = None
) -> dict[str, Any]:
    """A classifier's answer for one record: its `record_id` when it had one, the top
    label, its score, every class's probability, and with `k` the k best labels."""
    p = [float(x) for x in probabilities]
    if not all(math.isfinite(x) for x in p):  # never a label picked among NaNs
        raise ValueError(f"the model's class probabilities are not finite: {p[:8]}")
    order = sorted(range(len(p)), key=p.__getitem__, reverse=True)
    out: dict[str, Any] = {} if record_id is None else {ID_KEY: record_id}
    out["label"] = labels[order[0]]
    out["score"] = round(p[order[0]], 6)
    out["probabilities"] = {str(name): round(x, 6) for name, x in zip(labels, p, strict=True)}
    if k:
        out["top_k"] = [{"label": labels[i], "score": round(p[i], 6)} for i in order[:k]]
    return out


def class_csv_row(answer: dict[str, Any]) -> list[Any]:
    """`label,score,p_<class>...`, or with top_k `label_1,score_1,...` (`answers_csv`
    puts the record's id before them)."""
    if "top_k" in answer:
        return [v for t in answer["top_k"] for v in (t["label"], t["score"])]
    return [answer["label"], answer["score"], *answer["probabilities"].values()]


def answers_csv(
    answers: Sequence[dict[str, Any]], row: Callable[[dict[str, Any]], list[Any]] | None = None
) -> str:
    """One CSV line per answer (`encode_csv`): `row(answer)` (default `class_csv_row`),
    after an id column on every line where any record of the request had an `id` (empty
    for one that had none), so that each line's columns are read by the same positions."""
    row = row or class_csv_row
    ids = any(ID_KEY in answer for answer in answers)
    return encode_csv([[answer.get(ID_KEY, "")] * ids + row(answer) for answer in answers])


# --- responses -------------------------------------------------------------------------
def _dumps(value: Any) -> str:
    """JSON text; NaN and infinities (which JSON lacks, and a model may still output)
    become null rather than the invalid bare NaN Python's json writes. An answer nested
    past Python's recursion limit can only echo what a request sent: a 400."""
    try:
        try:
            return json.dumps(value, allow_nan=False)
        except ValueError:
            return json.dumps(_finite(value), allow_nan=False)
    except RecursionError:
        raise HTTPError(
            400, "the answer nests too deeply to write as JSON: it echoes a record's nested field"
        ) from None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_json(records: list[Any]) -> str:
    """`{"predictions": [...]}`, NaN and infinities as null (`_dumps`)."""
    return _dumps({"predictions": records})


def encode_jsonlines(records: list[Any]) -> str:
    """One JSON value per record, a line each, in order."""
    return "".join(_dumps(r) + "\n" for r in records)


def encode_csv(rows: Sequence[Sequence[Any]]) -> str:
    """One line per row, no header: one line per input line, so that batch transform's
    AssembleWith=Line joins them back in order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


def encode_records(records: list[Any], accept: str) -> str:
    """JSON or JSON Lines of any JSON-able records; CSV of lists, or of dicts' values."""
    if accept == JSONLINES:
        return encode_jsonlines(records)
    if accept == CSV:
        return encode_csv([list(r.values()) if isinstance(r, dict) else r for r in records])
    return encode_json(records)


def choose_accept(header: str | None, supported: Sequence[str]) -> str:
    """The best of `supported` in an Accept header (q-values honoured); the first of
    `supported` for none or */*; 406 if none fits."""
    if not header or not header.strip():
        return supported[0]
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
        if kind in ("*/*", ""):
            return supported[0]
        if kind.endswith("/*"):
            family = [s for s in supported if s.startswith(kind[:-1])]
            if family:
                return family[0]
        if kind in supported:
            return kind
    raise HTTPError(406, f"unsupported Accept {header!r}; use one of {', '.join(supported)}")


def check_content_type(header: str | None, supported: Sequence[str]) -> str:
    """The request's media type (the first of `supported` when absent), or 415; a header
    that is there but names no type (`;;;`, `; charset=utf-8`) is a 415 too."""
    if header is None or not header.strip():
        return supported[0]
    kind = media_type(header)
    if not _well_formed(kind):
        raise HTTPError(
            415, f"malformed Content-Type {header[:100]!r}; use one of {', '.join(supported)}"
        )
    if kind not in supported:
        raise HTTPError(
            415, f"unsupported Content-Type {kind!r}; use one of {', '.join(supported)}"
        )
    return kind
