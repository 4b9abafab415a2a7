"""Property-based fuzzing of the whole HTTP surface, for every plug-in.

Generated requests against the real stack (nginx -> gunicorn/gevent -> Flask), the
plug-in's trained model behind it: methods, paths among /ping, /invocations,
/execution-parameters and junk, the content types the plug-in declares and junk, Accept
and custom-attributes headers, and bodies generated per content type from the plug-in's
own sample requests (`sample.py`'s PAYLOADS) with odd values spliced in: integers of 400
digits, 1e308, NaN and infinities as numbers and as strings, lists and objects where
names belong, Unicode, empty values, and random bytes. A second property sends raw
request lines and headers that no HTTP client would.

Whatever comes in: never a 5xx, never HTML (every error is JSON with an "error"), /ping
stays 200 after every request, and the server stays up. Bounded and reproducible:
derandomized (the same examples on every run), no example database, bodies of at most
a few KB.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import socket
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import helpers

JSON, JSONLINES, CSV = "application/json", "application/jsonlines", "text/csv"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values ----------------------------------------------------------------------------
ODD_VALUES = st.sampled_from(
    [
        10**400,
        -(10**400),
        10**30,
        2**63,
        1e308,
        -1e308,
        1.7976931348623157e308,
        5e-324,
        -0.0,
        float("nan"),
        float("inf"),
        float("-inf"),
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1e308",
        "-1e309",
        "1e999",
        "1" * 400,
        "0x1p10",
        "",
        " ",
        "NA",
        "null",
        None,
        True,
        False,
        "\x00",
        "\ud800",
        "ünïcödé ✓",
        "😀" * 3,
        "a,b",
        '"',
        "\r\n",
        "\u2028",
        "$\\foo{$",
        [],
        {},
        [1, [2, [3]]],
        {"a": {"b": None}},
    ]
)
# What a number in a request may be instead: too large for a float, past what the model
# can standardise, not finite, or a string of one of those.
ODD_NUMBERS = st.sampled_from(
    [
        *(10**400, -(10**400), 10**30, 2**63, 1e308, -1e308, 1.7976931348623157e308, 5e-324),
        *(float("nan"), float("inf"), float("-inf"), "nan", "inf", "1e308", "-1e309", "1e999"),
        *("1" * 400, True, None, "", -0.0),
    ]
)
_ODD = ODD_VALUES.map(copy.deepcopy)  # edits change lists and objects in place
SCALARS = st.one_of(
    _ODD,
    _ODD,
    _ODD,
    st.integers(),
    st.floats(),
    st.text(st.characters(codec="utf-8"), max_size=20),  # lone surrogates: in ODD_VALUES
)
KEYS = st.one_of(
    st.sampled_from(["", "id", "instances", "inputs", "columns", "data", "text", "index"]),
    st.text(max_size=8),
)


def _paths(value, prefix: tuple = ()):
    """Every place in a parsed JSON value, the value itself first."""
    yield prefix
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in list(items):
            yield from _paths(item, (*prefix, key))


def _at(value, path: tuple):
    for key in path:
        value = value[key]
    return value


@st.composite
def edited(draw, value):
    """`value` (a sample request, parsed) with zero to three edits, each at a random
    place: a value replaced by an odd one, a field or item dropped, a field renamed, a
    value nested in a list, an item repeated. Most requests stay nearly valid, so that
    the odd value, not the first check, is what the server meets."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(list(_paths(value))))
        op = draw(st.sampled_from(["odd", "odd", "odd", "drop", "rename", "nest", "repeat"]))
        if not path:
            value = draw(SCALARS) if op == "odd" else [value]
            continue
        parent, key = _at(value, path[:-1]), path[-1]
        number = isinstance(parent[key], int | float) and not isinstance(parent[key], bool)
        if op == "odd" and number and draw(weighted({True: 2, False: 1})):
            parent[key] = draw(ODD_NUMBERS)
        elif op == "odd":
            parent[key] = draw(SCALARS)
        elif op == "nest":
            parent[key] = [parent[key]]
        elif op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        elif op == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return value


def _records(sample) -> list:
    payload = json.loads(sample)
    if isinstance(payload, dict):
        payload = next((payload[k] for k in ("instances", "inputs") if k in payload), payload)
    return payload if isinstance(payload, list) else [payload]


@st.composite
def json_values(draw, sample: bytes):
    """A JSON request shaped like the sample, in one of the layouts, mutated."""
    records = _records(sample)
    layouts = ["instances", "inputs", "bare", "one"]
    if records and all(isinstance(r, dict) for r in records):
        layouts += ["split", "columns"]
    layout = draw(st.sampled_from(layouts))
    if layout == "split":
        names = list(records[0])
        if draw(st.booleans()):  # names that are no names: lists, objects, numbers
            names[draw(st.integers(0, len(names) - 1))] = draw(SCALARS)
        value = {"columns": names, "data": [list(r.values()) for r in records]}
    elif layout == "columns":
        value = {k: [r.get(k) for r in records] for k in records[0]}
    elif layout == "bare":
        value = records
    elif layout == "one":
        value = records[0]
    else:
        value = {layout: records}
    return draw(edited(value))


def json_text(value, ascii_only: bool) -> bytes:
    try:
        text = json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)
    except (ValueError, TypeError):  # an integer past Python's 4300 digits
        text = "[]"
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8


@st.composite
def csv_bodies(draw, sample: bytes):
    """The sample's CSV rows with zero to three edits: a field replaced by an odd value,
    a field added or dropped, a row repeated; and any line ending."""
    rows = list(csv.reader(io.StringIO(sample.decode())))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        i = draw(st.integers(0, len(rows) - 1))
        op = draw(st.sampled_from(["odd", "odd", "odd", "add", "drop", "repeat"]))
        if op == "odd" and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = str(draw(SCALARS))
        elif op == "add":
            rows[i].append(str(draw(SCALARS)))
        elif op == "drop" and rows[i]:
            rows[i].pop()
        elif op == "repeat":
            rows.append(list(rows[i]))
    buf = io.StringIO()
    csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw, payloads: dict[str, bytes], content_type: str | None):
    """A body for `content_type`: generated from the plug-in's sample of that type (or
    any of its samples), spliced, empty, or random bytes."""
    kind = (content_type or "").split(";")[0].strip().lower()
    json_sample = payloads.get(JSON, next(iter(payloads.values())))
    choice = draw(weighted({"edited": 16, "spliced": 2, "bytes": 1, "empty": 1}))
    if choice == "bytes":
        return draw(st.binary(max_size=300))
    if choice == "empty":
        return b""
    if kind == CSV and CSV in payloads:
        body = draw(csv_bodies(payloads[CSV]))
    elif kind == JSONLINES:
        lines = draw(edited(_records(json_sample)))
        lines = lines if isinstance(lines, list) else [lines]
        body = b"".join(json_text(v, draw(st.booleans())) + b"\n" for v in lines)
    elif kind == "text/plain":
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    else:
        body = json_text(draw(json_values(json_sample)), draw(st.booleans()))
    if choice == "spliced":  # cut short, or bytes spliced in
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=4)) + body[cut:]
    return body[:4096]


# --- requests --------------------------------------------------------------------------
PATHS = [
    "/invocations",
    "/ping",
    "/execution-parameters",
    "/",
    "/invocations/",
    "//invocations",
    "/invocations?x=1&x=2",
    "/ping?" + "a" * 500,
    "/INVOCATIONS",
    "/_errors/internal",
    "/_errors/bad_request",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/invocations%00",
    "/%ff%fe",
    "/nope",
]
METHODS = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "FOO", "PROPFIND"]
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
ODD_ATTRIBUTES = [
    *("top_k=1", "top_k=2", "top_k=0", "top_k=-1", "top_k=abc", "top_k=" + "9" * 30),
    *("top_k=1e3", "top_k=3; top_k=1", "trace=x=y", ";;;", "x" * 1100),
]


def weighted(choices: dict) -> st.SearchStrategy:
    """One of `choices`' keys, each as often as its weight says (the first most likely
    where Hypothesis leans to the start of a list)."""
    return st.sampled_from([key for key, weight in choices.items() for _ in range(weight)])


@st.composite
def header(draw, good: list, junk: list, none: int = 1):
    """A header value: mostly one of `good`, else absent, one of `junk`, or any text."""
    kind = draw(weighted({"good": 6, "none": none, "junk": 2, "text": 1}))
    if kind == "good" and good:
        return draw(st.sampled_from(good))
    if kind == "junk":
        return draw(st.sampled_from(junk))
    if kind == "text":
        return draw(HEADER_TEXT)
    return None


def accepts(plugin) -> st.SearchStrategy:
    junk = ["*/*", "application/*", "text/*", "text/html", "image/png", f"{JSON};q=0", ""]
    junk += ["text/csv;q=0.5, application/json;q=nan", "a/b;;q=x,,", f"{JSON};q=1e999"]
    return header([*plugin.accept_types, None], junk)


def content_types(plugin) -> st.SearchStrategy:
    declared = list(plugin.content_types)
    junk = ["application/xml", "", ";;;", "text/", "*/*", "multipart/form-data; boundary=x"]
    junk += [f"{JSON}; charset=latin-1", "APPLICATION/JSON", "application/x-jsonlines"]
    junk += [f"{t}; charset=utf-8" for t in declared]
    return header(declared, junk)


ATTRIBUTES = header([None], ODD_ATTRIBUTES, none=0)


def plugin_of(name: str):
    from sagemaker_platform import registry

    return registry.load(name)


def assert_answer_is_clean(r: requests.Response, what) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    kind = r.headers.get("Content-Type", "")
    assert "html" not in kind.lower(), (what, r.status_code, kind, r.text[:300])
    if r.status_code >= 400:
        assert kind.startswith(JSON), (what, r.status_code, kind, r.text[:300])
        if what[0] != "HEAD":  # a HEAD's answer has no body
            assert isinstance(r.json()["error"], str), (what, r.text[:300])


@pytest.fixture(scope="module")
def served(plugin_server):
    """The plug-in's server once every worker is up: /ping answers 200 as soon as one
    is, and a 503 from another still loading is not what these tests look for."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = plugin_server.output()
        workers = re.search(r" workers=(\d+)", out)
        if workers and out.count(" ready load_seconds=") >= int(workers.group(1)):
            return plugin_server
        time.sleep(0.1)
    raise TimeoutError(plugin_server.output()[-3000:])


def ping(server) -> None:
    r = requests.get(server.url + "/ping", timeout=5)
    assert r.status_code == 200, (r.status_code, r.text[:300], server.output()[-3000:])


@FUZZ
@given(data=st.data())
def test_fuzzed_requests_get_an_answer_or_a_json_4xx(plugin_name, served, data):
    plugin = plugin_of(plugin_name)
    payloads = helpers.sample(plugin_name).PAYLOADS
    # Most requests POST to /invocations, where the bodies matter; the rest try the
    # other routes and methods.
    elsewhere = data.draw(weighted({False: 4, True: 1}), label="elsewhere")
    method = data.draw(st.sampled_from(METHODS), label="method") if elsewhere else "POST"
    path = data.draw(st.sampled_from(PATHS), label="path") if elsewhere else "/invocations"
    content_type = data.draw(content_types(plugin), label="content type")
    accept = data.draw(accepts(plugin), label="accept")
    attributes = data.draw(ATTRIBUTES, label="custom attributes")
    body = data.draw(bodies(payloads, content_type), label="body")
    headers = {}
    for name, value in (
        ("Content-Type", content_type),
        ("Accept", accept),
        ("X-Amzn-SageMaker-Custom-Attributes", attributes),
    ):
        if value is not None:
            headers[name] = value.strip()
    what = (method, path, headers, body[:200])
    r = requests.request(
        method,
        served.url + path,
        data=body,
        headers=headers,
        timeout=60,
        allow_redirects=False,
    )
    assert_answer_is_clean(r, what)
    if r.status_code == 200 and method == "POST" and path == "/invocations":
        assert r.content, what
        kind = r.headers["Content-Type"].split(";")[0]
        assert kind in plugin.accept_types, what
        if kind == JSON:
            assert_no_quiet_nulls(r.json()["predictions"], what)
    ping(served)


def assert_no_quiet_nulls(answers: list, what) -> None:
    """The shipped plug-ins' answers (a class and its score, the probabilities, a
    predicted value) are numbers: a null there is a non-finite output passed off as an
    answer (1e308 once answered `score: null`)."""
    for answer in answers:
        if isinstance(answer, dict):
            for key in ("score", "prediction"):
                assert answer.get(key, 0) is not None, (what, answer)
            assert None not in (answer.get("probabilities") or {}).values(), (what, answer)


# --- raw requests ----------------------------------------------------------------------
def raw(server, data: bytes) -> tuple[int, str, bytes] | None:
    """`data` onto a fresh connection; (status, content type, body) of the first final
    answer (past any 100 Continue; status 0 for HTTP/0.9's bare body), or None when the
    server closed without one."""
    out = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(data)
        s.settimeout(1.0)
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:  # nginx waits for a body the request promised: no more comes.
            # Half-closing only now: a client gone before its answer is one nginx aborts.
            s.shutdown(socket.SHUT_WR)
            s.settimeout(20)
            while chunk := s.recv(65536):
                out += chunk
    if out and not out.startswith(b"HTTP/"):  # an HTTP/0.9 answer: the body alone
        return 0, "", out
    while out:
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:
            out = body
            continue
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), value.strip())
        return status, fields.get("content-type", ""), body
    return None


TOKENS = st.sampled_from(["GET", "POST", "HEAD", "PUT", "get", "G@T", "", "X" * 300])
TARGETS = st.one_of(
    st.sampled_from([*PATHS, "*", "http://x/ping", "ping", "/ping#frag", "/p ing", "/\x01"]),
    st.binary(min_size=1, max_size=40).map(lambda b: "/" + b.decode("latin-1")),
)
# HTTP/2 and /3 answer 505 (another change makes that JSON); no version is HTTP/0.9,
# whose answers have no status line.
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.x", "HTTP/01.1", "http/1.1", "HTTP/1"])
RAW_HEADERS = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "Host: x",
                "Host:",
                "Content-Length: -1",
                "Content-Length: abc",
                "Content-Length: 0, 0",
                "Content-Length: 99999999999999999999",
                "Transfer-Encoding: chunked",
                "Transfer-Encoding: gzip, chunked",
                "Expect: 100-continue",
                "Content-Type: application/json",
                " folded: header",
                "No-Colon",
                ": empty-name",
                "X-Amzn-SageMaker-Custom-Attributes: top_k=" + "9" * 50,
                "Accept: text/html",
            ]
        ),
        st.builds(
            lambda n, v: f"{n}: {v}",
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20),
            st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
        ),
    ),
    max_size=5,
)


@settings(FUZZ, max_examples=150)
@given(
    method=TOKENS,
    target=TARGETS,
    version=VERSIONS,
    headers=RAW_HEADERS,
    body=st.binary(max_size=200),
)
def test_fuzzed_raw_requests_get_a_json_4xx_never_a_5xx(
    served, method, target, version, headers, body
):
    """Request lines and headers no client library would send, one per connection:
    whatever nginx or the app makes of them, the answer is never a 5xx, and an error is
    JSON. The body is sent as it is (what a Content-Length says or not); a request still
    waiting for more a second later is half-closed, and answered or dropped."""
    lines = [f"{method} {target} {version}", *headers, "Connection: close"]
    data = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body
    answered = raw(served, data)
    if answered is not None:  # else closed unanswered: a body cut short by the client
        check_raw_answer(data, method, *answered)
    ping(served)


def check_raw_answer(data: bytes, method: str, status: int, kind: str, answer: bytes) -> None:
    what = (data[:300], status, kind, answer[:300])
    if status == 0:  # HTTP/0.9 (a line break in the target ends its request line)
        assert isinstance(json.loads(answer), dict), what
        return
    assert status < 500, what
    assert "html" not in kind.lower(), what
    if status >= 400 and method != "HEAD":
        assert kind.startswith(JSON), what
        assert isinstance(json.loads(answer)["error"], str), what


def test_the_server_is_whole_after_the_fuzzing(plugin_name, served):
    """Runs after the properties: the stack is up, no worker was replaced (each loaded
    its model once), and a good request gets its answer."""
    assert served.proc.poll() is None, served.output()[-3000:]
    ping(served)
    out = served.output()
    workers = int(re.search(r" workers=(\d+)", out).group(1))
    assert out.count(" ready load_seconds=") == workers, out[-3000:]
    for kind, body in helpers.sample(plugin_name).PAYLOADS.items():
        r = requests.post(served.url + "/invocations", data=body, headers={"Content-Type": kind})
        assert r.status_code == 200, r.text[:300]


# --- what the fuzzing found, kept as plain cases -----------------------------------------
HOUSE = {"area_m2": 54.0, "rooms": 2, "age_years": 35, "distance_km": 3.1}
HOUSE.update({"district": "north", "heating": "gas"})
TABULAR_ATTACKS = {
    "400-digit integer": (JSON, json.dumps([{**HOUSE, "rooms": 10**400}]), "column 'rooms'"),
    "1e308": (JSON, json.dumps([{**HOUSE, "area_m2": 1e308}]), "column 'area_m2'"),
    "1e308 as a string": (JSON, json.dumps([{**HOUSE, "area_m2": "1e308"}]), "column 'area_m2'"),
    "1e308 in CSV": (CSV, "1e308,2,35,3.1,north,gas\n", "CSV row 1: column 'area_m2'"),
    "a list as a column name": (
        JSON,
        json.dumps({"columns": [["area_m2"], *list(HOUSE)[1:]], "data": [list(HOUSE.values())]}),
        "columns[0] is a JSON list",
    ),
    "an object as a column name": (
        JSON,
        json.dumps({"columns": [*list(HOUSE)[:5], {"a": 1}], "data": [list(HOUSE.values())]}),
        "columns[5] is a JSON dict",
    ),
}


@pytest.mark.parametrize("attack", TABULAR_ATTACKS)
def test_the_tabular_requests_that_were_500s_or_nulls_are_a_json_400(plugin_name, served, attack):
    if plugin_name != "tabular":
        pytest.skip("the tabular plug-in's columns")
    content_type, body, message = TABULAR_ATTACKS[attack]
    r = requests.post(
        served.url + "/invocations", data=body, headers={"Content-Type": content_type}
    )
    assert r.status_code == 400, r.text[:300]
    assert message in r.json()["error"]


@pytest.mark.parametrize("path", ["/ping", "/invocations", "/execution-parameters"])
def test_options_is_a_json_405_not_an_empty_html_200(served, path):
    r = requests.options(served.url + path, timeout=10)
    assert r.status_code == 405 and r.headers["Content-Type"].startswith(JSON), r.headers
    assert r.json()["error"]


@pytest.mark.parametrize(
    "header", [b"X-A: \x01", b"X-A: a\x7fb", b"Accept: \x1b[2J"], ids=["SOH", "DEL", "ESC"]
)
def test_a_header_nginx_passes_and_gunicorn_refuses_is_a_json_400(served, header):
    """A control character in a header value: nginx passes it on, gunicorn's parser
    refuses it, and its refusal was an HTML page."""
    data = b"GET /ping HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
    status, kind, answer = raw(served, data)
    assert status == 400 and kind.startswith(JSON), (status, kind, answer)
    assert "invalid http header" in json.loads(answer)["error"].lower()
    ping(served)
