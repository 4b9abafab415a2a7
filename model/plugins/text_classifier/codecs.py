"""The text classifier's requests and answers, built on the platform's codecs.

    application/json       "a text", ["a", "b"], {"inputs": ...} or {"instances": ...},
                           where each record is a text or {"text": ..., "id": ...}
    application/jsonlines  one record per line
    text/csv               one text per row (one column)
    text/plain             the whole body is one text

Answers: JSON (`{"predictions": [...]}`), JSON Lines or CSV, one per record, in order.
A record's `id` comes back in its answer. The custom attribute `top_k=K` adds the K best
labels with their scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sagemaker_platform import codecs
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, TEXT, HTTPError

CONTENT_TYPES = (JSON, JSONLINES, CSV, TEXT)
ACCEPT_TYPES = (JSON, JSONLINES, CSV)
_TEXT_KEYS = ("inputs", "text")


# What every worker answers once before /ping says ready (`Plugin.sample_request`).
SAMPLE_REQUEST = (b'{"inputs": ["warm-up"]}', JSON)


class TextRecord(NamedTuple):
    text: str
    id: Any = None  # echoed back in the answer when the request sent one


def _one_text(value: Any, where: str) -> str:
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


def _record(value: Any, where: str) -> TextRecord:
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                text = value[key]
                if isinstance(text, dict):
                    return _record(text, f"{where}.{key}")
                text = _one_text(text, f"{where}.{key}")
                return TextRecord(text, codecs.record_id(value, where))
        raise HTTPError(400, f"{where} is an object without an 'inputs' or 'text' field")
    return TextRecord(_one_text(value, where))


def decode_json(body: bytes) -> list[TextRecord]:
    payload = codecs.parse_json(codecs.body_text(body))
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
        codecs.check_records(len(payload))  # before a record is checked
        return [_record(v, f"inputs[{i}]") for i, v in enumerate(payload)]
    return [_record(payload, "inputs")]


def decode_jsonlines(body: bytes) -> list[TextRecord]:
    values = codecs.jsonlines_values(body)
    return [_record(v, f"line {i + 1}") for i, v in enumerate(values)]


def decode_csv(body: bytes) -> list[TextRecord]:
    records = []
    for i, row in enumerate(codecs.csv_rows(body)):
        if len(row) != 1:
            raise HTTPError(
                400, f"CSV row {i + 1} has {len(row)} columns; expected one text per row"
            )
        records.append(TextRecord(_one_text(row[0], f"CSV row {i + 1}")))
    return records


def decode_text(body: bytes) -> list[TextRecord]:
    return [TextRecord(_one_text(codecs.body_text(body), "body"))]


DECODERS = {JSON: decode_json, JSONLINES: decode_jsonlines, CSV: decode_csv, TEXT: decode_text}


def decode(body: bytes, content_type: str) -> list[TextRecord]:
    return DECODERS[content_type](body)


# --- answers ---------------------------------------------------------------------------
def answers(
    records: Sequence[TextRecord], probabilities, labels: Sequence, k: int | None = None
) -> list[dict[str, Any]]:
    """One answer per record (`codecs.class_answer`), with the record's `id` if it had one."""
    return [
        codecs.class_answer(row, labels, k, record.id)
        for record, row in zip(records, probabilities, strict=True)
    ]


def encode(answers_: list[dict[str, Any]], accept: str) -> str:
    if accept == CSV:
        return codecs.answers_csv(answers_)
    return codecs.encode_records(answers_, accept)
