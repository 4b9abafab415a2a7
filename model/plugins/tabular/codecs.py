"""The tabular model's requests and answers, built on the platform's codecs.

Requests carry the feature columns the model was trained on (extra fields are ignored):

    application/json       {"instances": [{"age": 41, "city": "Lyon"}, ...]} (or "inputs"),
                           a list of such records, one record, or column-oriented:
                           {"columns": ["age", "city"], "data": [[41, "Lyon"], ...]} or
                           {"age": [41, 35], "city": ["Lyon", "Oslo"]} (every value a list)
    application/jsonlines  one record per line
    text/csv               one row per record, the feature values in training's column
                           order, no header (a first row equal to the feature names is
                           skipped)

A record may carry an `id` (JSON, JSON Lines), echoed in its answer. Missing values
(null, "", "NA", ...) are allowed and mean what a missing value meant in training; a
missing field is a 400. Answers, one per record in order, in JSON
(`{"predictions": [...]}`), JSON Lines or CSV:

    classification  {"label": "premium", "score": 0.91, "probabilities": {...}}
                    CSV: [id,]label,score,p_<class>...; custom attribute top_k=K adds
                    "top_k": [{"label", "score"}...] (CSV: [id,]label_1,score_1,...)
    regression      {"prediction": 312.5}; CSV: [id,]prediction
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from sagemaker_platform import codecs
from sagemaker_platform.artifacts import shown
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, RECORD_KEYS, HTTPError

from .schema import CLASSIFICATION, BadValue, Schema

CONTENT_TYPES = (JSON, JSONLINES, CSV)
ACCEPT_TYPES = (JSON, JSONLINES, CSV)
ID_KEY = codecs.ID_KEY


class Row(NamedTuple):
    """One checked record, transformed by the schema: what `predict` stacks."""

    numeric: np.ndarray  # float32 [numeric columns]
    categorical: np.ndarray  # int64 [categorical columns]
    id: Any = None  # echoed back in the answer when the request sent one


# --- requests --------------------------------------------------------------------------
def _features(schema: Schema) -> str:
    names = list(schema.features)
    return ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def transform(
    schema: Schema, columns: Mapping[str, list], ids: list, what: str, first: int = 1
) -> list[Row]:
    """Rows from the features' columns; a 400 naming the record, column and value."""
    try:
        numeric, categorical = schema.transform(columns)
    except BadValue as bad:
        if bad.expected == "a number":
            problem = f"a non-numeric value {shown(bad.value)}"
        else:
            problem = f"{shown(bad.value)}, expected {bad.expected}"
        raise HTTPError(
            400, f"{what} {bad.row + first}: column {bad.column!r} has {problem}"
        ) from None
    return [Row(numeric[i], categorical[i], ids[i]) for i in range(len(ids))]


def rows_from_records(schema: Schema, records: list, what: str) -> list[Row]:
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise HTTPError(
                400,
                f"{what} {i + 1} is a JSON {type(record).__name__}; expected an object "
                "of column: value",
            )
    for column in schema.features:
        for i, record in enumerate(records):
            if column not in record:
                raise HTTPError(
                    400,
                    f"{what} {i + 1} has no field {column!r}; the model's features are "
                    + _features(schema),
                )
    columns = {c: [r[c] for r in records] for c in schema.features}
    ids = [codecs.record_id(r, f"{what} {i + 1}") for i, r in enumerate(records)]
    return transform(schema, columns, ids, what)


def _split_records(payload: dict) -> list[dict]:
    """{"columns": [...], "data": [[...], ...]} (pandas' orient="split") -> records."""
    columns = payload["columns"]
    for i, name in enumerate(columns):
        if not isinstance(name, str):
            raise HTTPError(
                400, f"columns[{i}] is a JSON {type(name).__name__}; column names are strings"
            )
    seen: set[str] = set()  # one pass: a body may list a million names
    for name in columns:
        if name in seen:
            raise HTTPError(400, f"columns lists {shown(name)} twice")
        seen.add(name)
    records = []
    for i, row in enumerate(payload["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            got = f"{len(row)} values" if isinstance(row, list) else f"a {type(row).__name__}"
            raise HTTPError(400, f"data row {i + 1} has {got}; expected {len(columns)}")
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _list_records(payload: dict) -> list[dict]:
    """{"age": [41, 35], "city": [...]} (orient="list") -> records."""
    keys = list(payload)
    for key in keys[1:]:
        if len(payload[key]) != len(payload[keys[0]]):
            raise HTTPError(
                400,
                "column-oriented JSON needs lists of one length: "
                f"{keys[0]!r} has {len(payload[keys[0]])}, {key!r} has {len(payload[key])}",
            )
    return [dict(zip(keys, values, strict=True)) for values in zip(*payload.values(), strict=True)]


def json_records(body: bytes) -> list:
    """A JSON body's records, in any of the accepted layouts."""
    payload = codecs.parse_json(codecs.body_text(body))
    if isinstance(payload, dict):
        wrapped = next((k for k in RECORD_KEYS if k in payload), None)
        if wrapped:
            payload = payload[wrapped]
        elif (
            isinstance(payload.get("columns"), list)
            and isinstance(payload.get("data"), list)
            and set(payload) <= {"columns", "data", "index"}
        ):
            codecs.check_records(len(payload["data"]))  # before a record is built
            payload = _split_records(payload)
        elif payload and all(isinstance(v, list) for v in payload.values()):
            codecs.check_records(max(map(len, payload.values())))
            payload = _list_records(payload)
    if isinstance(payload, dict):
        payload = [payload]  # one record
    if not isinstance(payload, list):
        raise HTTPError(
            400, f"JSON body is a {type(payload).__name__}; expected records of column: value"
        )
    if not payload:
        raise HTTPError(400, "the request holds an empty list of records")
    codecs.check_records(len(payload))
    return payload


def decode_csv(schema: Schema, body: bytes) -> list[Row]:
    rows = codecs.csv_rows(body, header=schema.features)  # a header row is no record
    first = 1
    if rows[0] == list(schema.features):  # a header row
        rows, first = rows[1:], 2
        if not rows:
            raise HTTPError(400, "CSV body has a header row and no data")
    width = len(schema.features)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise HTTPError(
                400,
                f"CSV row {i + first} has {len(row)} columns; expected {width}, the model's "
                f"features in order: {_features(schema)}",
            )
    columns = {c: [row[j] for row in rows] for j, c in enumerate(schema.features)}
    return transform(schema, columns, [None] * len(rows), "CSV row", first)


def decode(schema: Schema, body: bytes, content_type: str) -> list[Row]:
    if content_type == CSV:
        return decode_csv(schema, body)
    if content_type == JSONLINES:
        return rows_from_records(schema, codecs.jsonlines_values(body), "line")
    return rows_from_records(schema, json_records(body), "record")


def sample_request(schema: Schema) -> tuple[bytes, str]:
    """One JSON record the model must answer, from its schema: each numeric column at its
    training mean, each categorical one at its last category (the highest index into its
    embedding; missing when training saw none)."""
    record: dict[str, Any] = {c.name: c.mean for c in schema.numeric}
    for c in schema.categorical:
        record[c.name] = c.categories[-1] if c.categories else None
    return json.dumps({"instances": [record]}).encode(), JSON


def top_k(options: Mapping[str, str], schema: Schema) -> int | None:
    """The custom attribute top_k=K (classification only: regression ignores it)."""
    if schema.task != CLASSIFICATION:
        return None
    return codecs.top_k(options, len(schema.labels))


# --- answers ---------------------------------------------------------------------------
def answer(schema: Schema, row: Row, output: Any, k: int | None = None) -> dict[str, Any]:
    """One record's answer from its output: class probabilities, or the predicted value."""
    if schema.task == CLASSIFICATION:
        return codecs.class_answer(output, schema.labels, k, row.id)
    out: dict[str, Any] = {} if row.id is None else {ID_KEY: row.id}
    out["prediction"] = round(float(output), 6)
    return out


def csv_row(answer_: dict[str, Any]) -> list[Any]:
    """`prediction`, or a classifier's row (`codecs.class_csv_row`); `codecs.answers_csv`
    puts the record's id first."""
    if "prediction" in answer_:
        return [answer_["prediction"]]
    return codecs.class_csv_row(answer_)


def encode(
    schema: Schema, rows: Sequence[Row], outputs: Sequence[Any], accept: str, k: int | None = None
) -> str:
    """One request's answer: one per row, in order."""
    for i, output in enumerate(outputs):
        if not np.all(np.isfinite(output)):  # values the schema let through, yet overflow
            raise HTTPError(
                400,
                f"record {i + 1}: the model's output is not finite (its values are far "
                "outside the training data's range, or the model's weights are broken)",
            )
    answers = [answer(schema, r, o, k) for r, o in zip(rows, outputs, strict=True)]
    if accept == CSV:
        return codecs.answers_csv(answers, csv_row)
    return codecs.encode_records(answers, accept)
