"""The Flask-free service on a stand-in plug-in: its own limits, which nginx's answer
first on the real stack (nginx's body limit is the same figure), so only here does a
test reach them."""

from __future__ import annotations

import json

import pytest

from sagemaker_platform import codecs
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.config import ServeConfig
from sagemaker_platform.plugin import Plugin
from sagemaker_platform.service import Service

JSON = "application/json"


class Lengths(Plugin):
    name = "lengths"

    def load(self, model_dir, runtime):
        return "model"

    def predict(self, model, records):
        return [len(str(r)) for r in records]


@pytest.fixture
def service(tmp_path):
    def make(**settings) -> Service:
        s = Service(ServeConfig(workers=1, threads=1, **settings), tmp_path, plugin=Lengths())
        assert s.engine.wait_ready(10)
        return s

    return make


def body_of(size: int) -> bytes:
    """A JSON list of one string, exactly `size` bytes long."""
    body = json.dumps(["x" * (size - 4)]).encode()
    assert len(body) == size
    return body


def test_the_payload_limit_is_megabytes_to_the_byte(service):
    svc = service(max_payload_mb=0.01)  # 10485.76 bytes
    answer, _ = svc.invoke(body_of(10485), JSON, JSON)
    assert json.loads(answer) == {"predictions": [10481]}
    with pytest.raises(HTTPError) as exc:
        svc.invoke(body_of(10486), JSON, JSON)
    assert exc.value.status == 413 and "0.01 MB" in str(exc.value)


def test_the_record_limit_counts_records_not_bytes(service):
    svc = service(max_records=3)
    answer, _ = svc.invoke(json.dumps(["a", "bb", "ccc"]).encode(), JSON, JSON)
    assert json.loads(answer) == {"predictions": [1, 2, 3]}
    with pytest.raises(HTTPError) as exc:
        svc.invoke(json.dumps(["a"] * 4).encode(), JSON, JSON)
    assert exc.value.status == 413 and "MODEL_SERVER_MAX_RECORDS=3" in str(exc.value)


class Rows(Lengths):
    """A plug-in that parses CSV through the platform's helper, and counts what it built."""

    name = "rows"
    content_types = (codecs.CSV, JSON, codecs.JSONLINES)
    built = 0

    def decode(self, model, body, content_type, options):
        if content_type != codecs.CSV:
            records = super().decode(model, body, content_type, options)
        else:
            records = [row[0] for row in codecs.csv_rows(body)]
        Rows.built = len(records)
        for i, record in enumerate(records):  # a check of each record, as plug-ins do
            if record == "bad":
                raise HTTPError(400, f"record {i + 1} is bad")
        return records


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"a\n" * 300_000 + b"bad\n", codecs.CSV),
        (b'"a"\n' * 300_000 + b'"bad"\n', codecs.CSV),  # quoted: counted while parsed
        (b'"a"\n' * 300_000 + b'"bad"\n', codecs.JSONLINES),
        (json.dumps(["a"] * 300_000 + ["bad"]).encode(), JSON),
    ],
    ids=["csv", "csv-quoted", "jsonlines", "json"],
)
def test_too_many_records_are_a_413_before_they_are_built(tmp_path, body, content_type):
    """300,000 tiny records and a bad one after them, at a limit of 3: the parse stops at
    the fourth record, so the answer is the limit's 413 (not the bad record's 400), and
    no record was handed to the plug-in's own checks."""
    svc = Service(ServeConfig(workers=1, threads=1, max_records=3), tmp_path, plugin=Rows())
    assert svc.engine.wait_ready(10)
    Rows.built = 0
    with pytest.raises(HTTPError) as exc:
        svc.invoke(body, content_type, JSON)
    assert exc.value.status == 413, exc.value.message
    assert "MODEL_SERVER_MAX_RECORDS=3;" in exc.value.message
    assert Rows.built == 0


class PanicException(BaseException):
    """As pyo3 defines it (a Rust library's panic, tokenizers' among them): no Exception."""


class Panics(Lengths):
    def predict(self, model, records):
        if "panic" in records:
            raise PanicException("called `Result::unwrap()` on an `Err` value\nstack backtrace:")
        return super().predict(model, records)


def test_a_rust_panic_in_predict_is_an_error_answered_as_any_other(tmp_path):
    """Not an Exception, it went past every handler: gunicorn's HTML 500 for the request
    and every one batched with it, and a multi-line backtrace in the log."""
    s = Service(ServeConfig(workers=1, threads=1), tmp_path, plugin=Panics())
    assert s.engine.wait_ready(10)
    with pytest.raises(RuntimeError) as err:
        s.invoke(b'["a", "panic"]', "application/json", "application/json")
    assert str(err.value) == (
        "the plug-in's predict panicked: called `Result::unwrap()` on an `Err` value"
    )
    assert s.invoke(b'["a"]', "application/json", "application/json")[0]  # still serving
