import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from text_classifier import codecs
from text_classifier.codecs import HTTPError, choose_accept, decode, encode, records


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        (b'{"inputs": "a"}', "application/json", ["a"]),
        (b'{"inputs": ["a", "b"]}', "application/json; charset=utf-8", ["a", "b"]),
        (b'{"instances": [{"text": "a"}, "b"]}', "application/json", ["a", "b"]),
        (b'"a"', "application/json", ["a"]),
        (b'["a", "b"]', None, ["a", "b"]),
        (b'"a"\n{"text": "b"}\n\n', "application/jsonlines", ["a", "b"]),
        (b'"a"\n', "application/x-jsonlines", ["a"]),
        (b'"a"\r\n"b"\r\n', "application/jsonlines", ["a", "b"]),
        ('"a\x85b"\n"c\u2028d"\n'.encode(), "application/jsonlines", ["a\x85b", "c\u2028d"]),
        (b'a\n"b, with comma"\n"multi\nline"\n', "text/csv", ["a", "b, with comma", "multi\nline"]),
        (b"0\r0\r\nb\n", "text/csv", ["0\r0", "b"]),  # a lone CR is text; CRLF ends a row
        (b"\r0\n", "text/csv", ["\r0"]),
        ("caf\u00e9 \u2615".encode(), "text/plain", ["caf\u00e9 \u2615"]),
        (b"\xef\xbb\xbfbom", "text/plain", ["bom"]),
    ],
)
def test_decoders(body, content_type, expected):
    assert decode(body, content_type) == expected


@pytest.mark.parametrize(
    "body,content_type,status",
    [
        (b"", "application/json", 400),
        (b"[", "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b'{"inputs": [null]}', "application/json", 400),
        (b'{"inputs": [[]]}', "application/json", 400),
        (b'{"inputs": "   "}', "application/json", 400),
        (b'{"inputs": ["ok", "a\\ud800b"]}', "application/json", 400),
        (b'"\\udfff"\n', "application/jsonlines", 400),
        (b'{"x": 1}', "application/json", 400),
        (b"\n\n", "application/jsonlines", 400),
        (b'{"id": 1}\n', "application/jsonlines", 400),
        (b"\xc3\x28", "text/plain", 400),
        (b"a,b\n", "text/csv", 400),
        (b"x", "application/xml", 415),
    ],
)
def test_bad_bodies(body, content_type, status):
    with pytest.raises(HTTPError) as err:
        decode(body, content_type)
    assert err.value.status == status


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, codecs.JSON),
        ("*/*", codecs.JSON),
        ("text/csv", codecs.CSV),
        ("application/jsonlines;q=0.2, text/csv;q=0.9", codecs.CSV),
        ("image/png, application/json", codecs.JSON),
        ("text/csv;q=0, application/json", codecs.JSON),
    ],
)
def test_accept(header, expected):
    assert choose_accept(header) == expected


def test_unsupported_accept_is_406():
    with pytest.raises(HTTPError) as err:
        choose_accept("image/png")
    assert err.value.status == 406


def test_records_and_encoders_keep_order_and_one_line_each():
    recs = records([[0.1, 0.9], [0.7, 0.3]], ["neg", 1])
    assert [r["label"] for r in recs] == [1, "neg"]
    assert recs[0]["probabilities"] == {"neg": 0.1, "1": 0.9}
    assert json.loads(encode(recs, codecs.JSON))["predictions"] == recs
    assert [json.loads(line) for line in encode(recs, codecs.JSONLINES).splitlines()] == recs
    rows = list(csv.reader(io.StringIO(encode(recs, codecs.CSV))))
    assert rows == [["1", "0.9", "0.1", "0.9"], ["neg", "0.7", "0.7", "0.3"]]


@given(st.binary(max_size=2000), st.sampled_from([*list(codecs.DECODERS), "x/y", None]))
def test_any_body_decodes_or_is_a_4xx(body, content_type):
    try:
        texts = decode(body, content_type)
    except HTTPError as exc:
        assert 400 <= exc.status < 500
    else:
        assert texts and all(isinstance(t, str) and t.strip() for t in texts)


@given(st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=20))
def test_every_format_round_trips_texts(texts):
    as_json = json.dumps({"inputs": texts}).encode()
    as_lines = "".join(json.dumps(t) + "\n" for t in texts).encode()
    assert decode(as_json, codecs.JSON) == texts
    assert decode(as_lines, codecs.JSONLINES) == texts
