import csv
import io
import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plugins.text_classifier import codecs as text_codecs
from plugins.text_classifier import plugin
from sagemaker_platform import codecs
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, HTTPError


def decode(body: bytes, content_type: str | None, options=None) -> list[str]:
    """The text plug-in's decode as the service calls it: 415 and empty bodies first."""
    kind = codecs.check_content_type(content_type, plugin.content_types)
    if not body:
        raise HTTPError(400, "request body is empty")
    return [r.text for r in plugin.decode(MODEL, body, kind, options or {})]


class _Model:
    labels = ("a", "b", "c")  # what decode and encode read of the loaded model


MODEL = _Model()


def choose_accept(header):
    return codecs.choose_accept(header, plugin.accept_types)


def records(probabilities, labels):
    return text_codecs.answers(
        [text_codecs.TextRecord("x")] * len(probabilities), probabilities, labels
    )


def encode(answers, accept):
    return text_codecs.encode(answers, accept)


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


@given(st.binary(max_size=2000), st.sampled_from([*list(text_codecs.DECODERS), "x/y", None]))
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


def test_a_records_id_comes_back_in_its_answer_and_top_k_ranks_labels():
    body = b'{"instances": [{"text": "a", "id": "r-1"}, "b", {"text": "c", "id": 7}]}'
    recs = plugin.decode(MODEL, body, codecs.JSON, {})
    assert [r.id for r in recs] == ["r-1", None, 7]
    probs = [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8]]
    out = json.loads(plugin.encode(MODEL, recs, torch.tensor(probs), codecs.JSON, {"top_k": "2"}))[
        "predictions"
    ]
    assert [a.get("id") for a in out] == ["r-1", None, 7]
    assert out[0]["top_k"] == [{"label": "b", "score": 0.5}, {"label": "c", "score": 0.3}]
    rows = list(
        csv.reader(
            io.StringIO(plugin.encode(MODEL, recs, torch.tensor(probs), codecs.CSV, {"top_k": "1"}))
        )
    )
    # an id column on every line once any record has one: columns read by position
    assert rows == [["r-1", "b", "0.5"], ["", "a", "0.6"], ["7", "c", "0.8"]]
    no_ids = plugin.decode(MODEL, b'["a", "b"]', codecs.JSON, {})
    answer = plugin.encode(MODEL, no_ids, torch.tensor(probs[:2]), codecs.CSV, {"top_k": "1"})
    assert answer == "b,0.5\na,0.6\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": [{"text": "a", "id": [1]}]}', "inputs[0].id is a JSON list"),
        (b'[{"text": "a", "id": {"k": 1}}]', "[0].id is a JSON object"),
    ],
)
def test_an_id_is_a_string_or_a_number_not_a_structure_to_echo(body, message):
    with pytest.raises(HTTPError) as err:
        plugin.decode(MODEL, body, codecs.JSON, {})
    assert err.value.status == 400 and message in err.value.message
    assert "an id is a string or a number" in err.value.message


def test_an_answer_nested_past_the_recursion_limit_is_a_400_not_a_500():
    """The attack echoed an id nested 500 deep that held a NaN: the NaN-to-null pass
    recursed out of Python's stack and the server answered 500."""
    deep: object = float("nan")
    for _ in range(600):
        deep = [deep]
    for encode in (codecs.encode_json, codecs.encode_jsonlines):
        with pytest.raises(HTTPError) as err:
            encode([{"id": deep, "label": "a"}])
        assert err.value.status == 400 and "nests too deeply" in err.value.message
    assert codecs.encode_json([{"id": [[float("nan")]]}]) == '{"predictions": [{"id": [[null]]}]}'


def test_csv_answers_of_any_row_shape_share_their_columns():
    answers = [{"prediction": 1.5}, {"id": "x,1", "prediction": 2.0}, {"prediction": 3.0}]
    out = codecs.answers_csv(answers, lambda a: [a["prediction"]])
    assert list(csv.reader(io.StringIO(out))) == [["", "1.5"], ["x,1", "2.0"], ["", "3.0"]]
    assert codecs.answers_csv([{"prediction": 1.5}], lambda a: [a["prediction"]]) == "1.5\n"


@pytest.mark.parametrize("value", ["0", "-1", "x", "2.5", "4"])
def test_a_bad_top_k_is_a_400_naming_it(value):
    with pytest.raises(HTTPError) as err:
        decode(b'"a"', codecs.JSON, {"top_k": value})
    assert err.value.status == 400 and "top_k" in err.value.message


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, {}),
        ("top_k=3", {"top_k": "3"}),
        ("top_k=3; trace=abc", {"top_k": "3", "trace": "abc"}),
        ("Top_K = 2, flag", {"top_k": "2", "flag": ""}),
    ],
)
def test_custom_attributes_become_options(header, expected):
    assert codecs.parse_options(header) == expected


def test_accept_honours_the_plugins_own_types():
    assert codecs.choose_accept("text/*", (codecs.JSON, codecs.CSV)) == codecs.CSV
    assert codecs.choose_accept("application/*", (codecs.JSONLINES,)) == codecs.JSONLINES
    with pytest.raises(HTTPError) as err:
        codecs.choose_accept("text/csv", (codecs.JSON,))
    assert err.value.status == 406


def test_answers_are_valid_json_even_when_a_model_outputs_nan_or_infinity():
    records = [{"prediction": float("nan")}, {"prediction": [1.0, float("inf")]}]
    assert json.loads(codecs.encode_json(records)) == {
        "predictions": [{"prediction": None}, {"prediction": [1.0, None]}]
    }
    lines = codecs.encode_jsonlines(records).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"prediction": None},
        {"prediction": [1.0, None]},
    ]
    assert "NaN" not in codecs.encode_json(records)


UNTERMINATED = b'"unterminated\nline two\nline three\n'


@pytest.mark.parametrize(
    "body,line",
    [
        (UNTERMINATED, 1),
        (b'ok\n"spans\ntwo lines"\n"open\nand on\n', 4),
        (b'a\r\n"b\r\n', 2),
    ],
)
def test_a_csv_quote_left_open_is_a_400_naming_its_line(body, line):
    with pytest.raises(HTTPError) as err:
        codecs.csv_rows(body)
    assert err.value.status == 400
    assert err.value.message == f"CSV line {line} opens a quote that is never closed"


def test_a_quoted_newline_is_one_record_outside_batch_transform():
    assert codecs.csv_rows(b'a\n"b\nc"\nd\n') == [["a"], ["b\nc"], ["d"]]


def test_under_batch_transform_each_line_is_one_record_whatever_the_quoting():
    """SageMaker splits batch input at newlines: the answer must have a line per line."""
    assert codecs.csv_rows(UNTERMINATED, one_per_line=True) == [
        ["unterminated"],
        ["line two"],
        ["line three"],
    ]
    assert codecs.csv_rows(b'a,"b\nc"\r\nd\re\n', one_per_line=True) == [
        ["a", "b"],
        ['c"'],
        ["d\re"],
    ]
    assert codecs.csv_rows(b"x\n\ny\n", one_per_line=True) == [["x"], [], ["y"]]


def test_the_service_turns_line_records_on_under_batch_transform(monkeypatch):
    """Through the service's own decode step: a batch transform job's server reads each
    line as one record, any other reads a quote across lines (and refuses one left open);
    nothing of it outlives the request."""
    from sagemaker_platform import service
    from sagemaker_platform.config import ServeConfig

    class Engine:  # the engine's load never runs here
        def __init__(self, *args, **kwargs):
            pass

    monkeypatch.setattr(service, "BatchEngine", Engine)
    batch = service.Service(ServeConfig(batch=True), None, plugin=plugin)
    records = batch._decode(plugin, MODEL, UNTERMINATED, "text/csv", {})
    assert [r.text for r in records] == ["unterminated", "line two", "line three"]
    realtime = service.Service(ServeConfig(), None, plugin=plugin)
    with pytest.raises(HTTPError, match="CSV line 1 opens a quote"):
        realtime._decode(plugin, MODEL, UNTERMINATED, "text/csv", {})
    with pytest.raises(HTTPError, match="CSV line 1 opens a quote"):
        decode(UNTERMINATED, "text/csv")  # outside a request: quotes span lines


@pytest.mark.parametrize(
    "header", [";;;", ";", " ; charset=utf-8", "json", "text/", "/csv", "a b/c"]
)
def test_a_malformed_content_type_is_a_415_not_read_as_json(header):
    with pytest.raises(HTTPError) as err:
        decode(b'"x"', header)
    assert err.value.status == 415
    assert "malformed Content-Type" in err.value.message


@pytest.mark.parametrize("header", [None, "", "  "])
def test_no_content_type_is_json(header):
    assert decode(b'"x"', header) == ["x"]


def test_text_after_a_closing_quote_is_a_400_naming_its_line():
    """`"a` then `"b` on the next line would otherwise close the quote and make one
    record of two lines."""
    with pytest.raises(
        HTTPError, match=r"CSV line 3 is not valid CSV: ',' expected.*quoted field from line 2"
    ):
        codecs.csv_rows(b'ok\n"open\n"I was charged\nthird\n')


# --- the record limit, counted while parsing ------------------------------------------
LIMIT = 10
MANY = 1_000_000  # one-character records: 2-4 MB, inside the real-time body limit


def _json_list(n: int, last=None) -> bytes:
    return json.dumps(["a"] * n + ([] if last is None else [last])).encode()


# Each content type: a body of n tiny records, and one with a bad record after n good ones
# (a decoder that parsed the whole body first would answer its 400).
LIMITED = {
    "json": (JSON, lambda n: _json_list(n), lambda n: _json_list(n, 5)),
    "json-inputs": (
        JSON,
        lambda n: b'{"inputs": ' + _json_list(n) + b"}",
        lambda n: b'{"inputs": ' + _json_list(n, {"no": "text"}) + b"}",
    ),
    "jsonlines": (JSONLINES, lambda n: b'"a"\n' * n, lambda n: b'"a"\n' * n + b"{bad\n"),
    "csv": (CSV, lambda n: b"a\n" * n, lambda n: b"a\n" * n + b"two,columns\n"),
    "csv-quoted": (CSV, lambda n: b'"a"\n' * n, lambda n: b'"a"\n' * n + b'"never closed\n'),
}


@pytest.mark.parametrize("name", LIMITED)
def test_a_body_over_the_record_limit_is_a_413_before_its_records_are_built(name):
    content_type, body_of, bad_after = LIMITED[name]
    with codecs.request_limits(LIMIT):
        assert decode(body_of(LIMIT), content_type) == ["a"] * LIMIT
        for body in (body_of(LIMIT + 1), body_of(MANY), bad_after(LIMIT + 1)):
            with pytest.raises(HTTPError) as err:
                decode(body, content_type)
            assert err.value.status == 413, err.value.message
            assert "MODEL_SERVER_MAX_RECORDS=10;" in err.value.message
    with pytest.raises(HTTPError) as err:  # outside the service's block: no limit
        decode(bad_after(LIMIT + 1), content_type)
    assert err.value.status == 400


def test_the_413_counts_the_records_where_the_lines_tell():
    with codecs.request_limits(LIMIT), pytest.raises(HTTPError) as err:
        decode(b"a\n" * MANY, CSV)
    assert err.value.message.startswith(f"the request holds {MANY} records, more than ")


def test_the_line_count_refuses_only_where_each_line_is_a_record():
    """Outside batch transform a quoted field may span lines: 5 records over 20 lines
    are 5 records; trailing blank lines are none. Under batch transform every line is
    one, quoted or not."""
    spanning = b'"first line\nsecond line\nthird line\nfourth"\n' * 5
    blank_tail = b"a\n" * LIMIT + b"\n" * MANY
    with codecs.request_limits(LIMIT):
        assert len(codecs.csv_rows(spanning, one_per_line=False)) == 5
        assert len(codecs.csv_rows(blank_tail, one_per_line=False)) == LIMIT
        assert len(codecs.csv_rows(blank_tail.replace(b"\n", b"\r\n"), one_per_line=True)) == 10
        assert len(codecs.jsonlines_values(b'"a"\n' * LIMIT + b" \n\t\n" * MANY)) == LIMIT
        with pytest.raises(HTTPError) as err:
            codecs.csv_rows(spanning, one_per_line=True)
        assert err.value.status == 413


def test_a_header_row_is_not_a_record():
    body = b"name\n" + b"a\n" * LIMIT
    with codecs.request_limits(LIMIT):
        for by_line in (False, True):
            rows = codecs.csv_rows(body, one_per_line=by_line, header=["name"])
            assert len(rows) == LIMIT + 1
            with pytest.raises(HTTPError, match="MODEL_SERVER_MAX_RECORDS"):
                codecs.csv_rows(body, one_per_line=by_line, header=["other"])
            with pytest.raises(HTTPError, match="holds 11 records, more than MODEL_SERVER_MAX"):
                codecs.csv_rows(body + b"a\n", one_per_line=by_line, header=["name"])


# --- what `make mutate` found no test reading ---------------------------------------------
def status_and_message(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(HTTPError) as err:
        call(*args, **kwargs)
    return err.value.status, err.value.message


def test_the_custom_attributes_limit_is_1024_characters_exactly():
    assert codecs.parse_options("k=" + "v" * 1022) == {"k": "v" * 1022}
    assert status_and_message(codecs.parse_options, "k=" + "v" * 1023) == (
        400,
        "X-Amzn-SageMaker-Custom-Attributes is over 1024 characters",
    )


@pytest.mark.parametrize(
    "header,expected",
    [
        ("text/csv;q=1, application/json;q=0.5", CSV),  # q=1 is not q=0
        ("text/csv;q=oops, application/json;q=0.1", JSON),  # a q that is no number: q=0
        ("image/png,application/jsonlines", JSONLINES),  # no space after the comma
        ("text/csv;q=1, application/json", CSV),  # no q is q=1: the first listed wins
    ],
)
def test_accept_reads_each_types_q(header, expected):
    assert choose_accept(header) == expected


def test_a_type_refused_with_q_0_is_not_chosen_and_406_names_what_is_served():
    assert status_and_message(choose_accept, "text/csv;q=0") == (
        406,
        "unsupported Accept 'text/csv;q=0'; use one of application/json, "
        "application/jsonlines, text/csv",
    )


def test_empty_bodies_are_400s_saying_what_is_missing():
    assert status_and_message(codecs.json_records, b"[]") == (
        400,
        "the request holds an empty list of records",
    )
    assert status_and_message(codecs.json_records, b'{"instances": []}')[1].endswith("records")
    assert status_and_message(codecs.jsonlines_values, b" \n\n") == (
        400,
        "body has no JSON Lines records",
    )
    assert status_and_message(codecs.csv_rows, b"\n\r\n") == (400, "body has no CSV rows")


def test_a_bad_json_line_is_named_by_its_number_and_the_last_needs_no_newline():
    assert codecs.jsonlines_values(b'{"a": 1}\n{"b": 2}') == [{"a": 1}, {"b": 2}]
    status, message = status_and_message(codecs.jsonlines_values, b'{"a": 1}\n{bad\n')
    assert (status, message.split(":")[0]) == (400, "line 2 is not valid JSON")


def test_one_json_value_is_one_record_and_csv_answers_take_a_dicts_values():
    assert codecs.decode_records(b'{"text": "hi"}', JSON) == [{"text": "hi"}]
    assert codecs.encode_records([{"a": 1, "b": "x"}, [2, "y"]], CSV) == "1,x\n2,y\n"


def test_the_413_without_a_count_and_its_advice_for_batch_transform():
    """A quoted body is counted as it is parsed: the 413 comes at the first row past the
    limit (a header row aside), before the rest is read, so it cannot say how many."""
    body = b'name\n"a"\n"b"\n"c"\n'
    with codecs.request_limits(2):
        assert len(codecs.csv_rows(body[: -len(b'"c"\n')], header=["name"])) == 3
        assert status_and_message(codecs.csv_rows, body, header=["name"]) == (
            413,
            "the request holds more records than MODEL_SERVER_MAX_RECORDS=2; send fewer "
            "per request (batch transform: a smaller MaxPayloadInMB)",
        )


def test_a_body_holding_the_lone_cr_stand_in_is_parsed_as_it_is():
    """csv_rows carries a lone CR through the parser as U+E000; a body that holds U+E000
    itself is parsed without that trick, trailing line ends still dropped."""
    assert codecs.csv_rows("a,\ue000b\r\nc,d\r\n\r\n".encode()) == [["a", "\ue000b"], ["c", "d"]]


def test_class_answer_refuses_probabilities_and_labels_of_different_lengths():
    with pytest.raises(ValueError):
        codecs.class_answer([0.5, 0.5], ["only one label"])


@pytest.mark.parametrize(
    "body,content_type,message",
    [
        (b'{"inputs": ["ok", 5]}', JSON, "inputs[1] must be a string, got int"),
        (b'{"inputs": [{"text": {"inputs": " "}}]}', JSON, "inputs[0].text.inputs is an empty string"),
        (b'{"inputs": ["ok", "a\\ud800b"]}', JSON, "inputs[1] is not valid Unicode (a lone surrogate at character 1)"),
        (b'{"inputs": [{"id": 3}]}', JSON, "inputs[0] is an object without an 'inputs' or 'text' field"),
        (b'{"x": 1}', JSON, "JSON object needs an 'inputs' (or 'instances') field"),
        (b'{"inputs": []}', JSON, "inputs is an empty list"),
        (b"7", JSON, "inputs must be a string, got int"),
        (b'"ok"\n{"text": 1}\n', JSONLINES, "line 2.text must be a string, got int"),
        (b"ok\na,b\n", CSV, "CSV row 2 has 2 columns; expected one text per row"),
        (b'ok\n" "\n', CSV, "CSV row 2 is an empty string"),
        (b" ", codecs.TEXT, "body is an empty string"),
    ],
)  # fmt: skip
def test_the_text_plugins_400s_name_the_record_and_what_is_wrong(body, content_type, message):
    assert status_and_message(decode, body, content_type) == (400, message)


def test_the_text_plugin_refuses_more_probabilities_than_records():
    with pytest.raises(ValueError):
        text_codecs.answers([text_codecs.TextRecord("x")], [[0.5, 0.5]] * 2, ["a", "b"])


def test_the_record_limit_and_a_bad_body_read_in_full():
    assert status_and_message(codecs.check_records, 3, 2) == (
        413,
        "the request holds 3 records, more than MODEL_SERVER_MAX_RECORDS=2; send fewer per "
        "request (batch transform: a smaller MaxPayloadInMB)",
    )
    codecs.check_records(2, 2)
    assert status_and_message(codecs.body_text, b"ab\xff") == (
        400,
        "body is not valid UTF-8 (byte 2)",
    )
    status, message = status_and_message(codecs.csv_rows, b'ok\n"open\n"I was charged\n')
    assert status == 400 and message.endswith("(in a quoted field from line 2)")
