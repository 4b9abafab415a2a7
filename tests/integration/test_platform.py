"""The platform's promises, once per plug-in: what `train` writes, every content type
and Accept through nginx + gunicorn, the error battery, and a short soak.

Each test takes `plugin_name` (conftest: every folder of model/plugins/, and the names
in PLATFORM_TEST_PLUGINS), so it runs for the text classifier, the tabular model, the
image classifier and yours alike: a plug-in gets all of this without a line of its own,
given a `sample.py` with `write_data`, `HYPERPARAMETERS` and `PAYLOADS`: a request for
each content type the plug-in takes, of three records for JSON, JSON Lines and CSV and
of one record for any other type (an image, a text/plain body: `helpers.records_in`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading

import pytest
import requests
import torch

from tests import helpers

JSON, JSONLINES, CSV = "application/json", "application/jsonlines", "text/csv"


def post(server, body: bytes, content_type: str = JSON, accept: str = JSON, **headers):
    headers = {"Content-Type": content_type, "Accept": accept, **headers}
    return requests.post(server.url + "/invocations", data=body, headers=headers, timeout=60)


def plugin_of(name: str):
    from sagemaker_platform import registry

    return registry.load(name)


def answers(response) -> list:
    """The answers of one response, one per record, whatever its type."""
    kind = response.headers["Content-Type"].split(";")[0]
    if kind == JSON:
        return response.json()["predictions"]
    if kind == JSONLINES:
        return [json.loads(line) for line in response.text.splitlines()]
    assert kind == CSV, kind
    return list(csv.reader(io.StringIO(response.text)))


# --- train -----------------------------------------------------------------------------
def test_training_leaves_a_model_that_names_its_plugin(plugin_name, plugin_trained):
    model_dir = plugin_trained / "model"
    from sagemaker_platform import registry

    manifest = json.loads((model_dir / "plugin.json").read_text())
    assert manifest["plugin"] == plugin_of(plugin_name).name
    # where the registry found it: plugins.NAME in the repo, NAME itself on PYTHONPATH
    assert manifest["module"] == registry.module_name(plugin_name)
    checkpoint = torch.load(model_dir / "model.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["state_dict"] and "optimizer_states" not in checkpoint
    assert any(k.startswith("network.") for k in checkpoint["state_dict"]), "serving loads these"
    checkpoints = plugin_trained / "checkpoints"
    assert (checkpoints / "best.ckpt").is_file() and (checkpoints / "last.ckpt").is_file()
    assert list((plugin_trained / "output" / "tensorboard").rglob("events.out.tfevents.*"))
    assert not (plugin_trained / "output" / "failure").exists()


def test_metrics_json_and_the_log_lines_carry_the_plugins_metrics(plugin_name, plugin_trained):
    metrics = json.loads((plugin_trained / "output" / "data" / "metrics.json").read_text())
    assert metrics["model"] == plugin_of(plugin_name).name and metrics["best_epoch"] >= 1
    validation = {k: v for k, v in metrics.items() if k.startswith("val_")}
    assert validation, metrics.keys()
    log = (plugin_trained.parent / "train.stdout").read_text()
    epochs = re.findall(r"INFO train: epoch=(\d+) train_loss=\S+ (val_\w+=\S+ )+", log)
    assert [e[0] for e in epochs] == ["1", "2"], log[-3000:]
    result = re.search(r"INFO train: result best_epoch=\d+ (.*)", log)
    assert result, log[-3000:]
    for name, value in validation.items():  # the result line repeats metrics.json
        assert f"{name}=" in result.group(1)
        logged = float(re.search(rf"{name}=(\S+)", result.group(1)).group(1))
        assert logged == pytest.approx(value, abs=1e-4)
    assert "\r" not in log and "it/s" not in log  # no progress bars
    assert "not charted" not in log  # every figure of the result line has a chart


# --- serve -----------------------------------------------------------------------------
def test_ping(plugin_server):
    assert requests.get(plugin_server.url + "/ping", timeout=2).status_code == 200


@pytest.mark.parametrize("content_type", [JSON, JSONLINES, CSV])
@pytest.mark.parametrize("accept", [JSON, JSONLINES, CSV])
def test_every_content_type_and_accept_answer_one_record_per_input(
    plugin_name, plugin_server, content_type, accept
):
    plugin, payloads = plugin_of(plugin_name), helpers.sample(plugin_name).PAYLOADS
    body = payloads.get(content_type, payloads[JSON])
    r = post(plugin_server, body, content_type, accept)
    if content_type not in plugin.content_types or accept not in plugin.accept_types:
        assert r.status_code == (406 if accept not in plugin.accept_types else 415), r.text
        assert r.json()["error"]
        return
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(accept)
    assert len(answers(r)) == 3
    if accept != JSON:
        assert len(r.text.splitlines()) == 3  # batch transform joins lines back in order


def test_records_get_the_same_answer_alone_and_batched(plugin_name, plugin_server):
    """fp32: a record's answer does not depend on what shares its request or batch."""
    if JSONLINES not in plugin_of(plugin_name).content_types:
        pytest.skip(f"{plugin_name} takes no JSON Lines")
    lines = helpers.sample(plugin_name).PAYLOADS[JSONLINES].decode().splitlines()
    together = answers(post(plugin_server, "\n".join(lines).encode(), JSONLINES))
    alone = [answers(post(plugin_server, line.encode(), JSONLINES))[0] for line in lines]
    assert len(together) == len(alone) == 3
    for a, b in zip(together, alone, strict=True):
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or _close(a, b)


def one_record_types(plugin_name: str) -> list[str]:
    """The plug-in's sample content types whose body is one record (an image...)."""
    payloads = helpers.sample(plugin_name).PAYLOADS
    return [kind for kind in payloads if helpers.records_in(kind) == 1]


def test_the_sample_has_a_request_for_every_content_type_it_takes(plugin_name):
    plugin, payloads = plugin_of(plugin_name), helpers.sample(plugin_name).PAYLOADS
    missing = [kind for kind in plugin.content_types if kind not in payloads]
    assert not missing, f"sample.py's PAYLOADS has no request of {missing}, which it takes"
    extra = [kind for kind in payloads if kind not in plugin.content_types]
    assert not extra, f"sample.py's PAYLOADS has requests of {extra}, which it does not take"


def test_a_one_record_body_is_one_answer_in_every_accept(plugin_name, plugin_server):
    """An image (or a whole text/plain body) is one record: one answer, one line."""
    plugin, payloads = plugin_of(plugin_name), helpers.sample(plugin_name).PAYLOADS
    kinds = one_record_types(plugin_name)
    if not kinds:
        pytest.skip(f"{plugin_name} takes no body of one record")
    for kind in kinds:
        for accept in plugin.accept_types:
            r = post(plugin_server, payloads[kind], kind, accept)
            assert r.status_code == 200, (kind, accept, r.text)
            assert r.headers["Content-Type"].startswith(accept)
            assert len(answers(r)) == 1, (kind, accept, r.text)
            if accept != JSON:
                assert len(r.text.splitlines()) == 1, (kind, accept, r.text)


def test_a_one_record_body_gets_the_same_answer_alone_and_batched(plugin_name, plugin_server):
    """The same body sent alone, then by 8 clients at once (the server batches their
    records into one forward pass, with each other's and the three-record requests'):
    every answer is the one it got alone."""
    payloads = helpers.sample(plugin_name).PAYLOADS
    kinds = one_record_types(plugin_name)
    if not kinds:
        pytest.skip(f"{plugin_name} takes no body of one record")
    alone = {kind: answers(post(plugin_server, payloads[kind], kind)) for kind in payloads}
    start, got, lock = threading.Barrier(8), [], threading.Lock()

    def client(i: int) -> None:
        kind = list(payloads)[i % len(payloads)] if i % 2 else kinds[i % len(kinds)]
        session = requests.Session()
        start.wait(timeout=30)
        for _ in range(5):
            r = session.post(
                plugin_server.url + "/invocations",
                data=payloads[kind],
                headers={"Content-Type": kind, "Accept": JSON},
                timeout=30,
            )
            with lock:
                got.append((kind, r.status_code, answers(r) if r.status_code == 200 else r.text))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(got) == 40 and all(status == 200 for _, status, _ in got), got[:3]
    for kind, _, answer in got:
        assert len(answer) == helpers.records_in(kind)
        assert all(_same(a, b) for a, b in zip(answer, alone[kind], strict=True)), (kind, answer)


def test_a_broken_one_record_body_is_a_4xx_never_a_5xx(plugin_name, plugin_server):
    """A body of one record that is no such thing (garbage, or cut short): a JSON 4xx
    naming the problem (or, if what remains still reads, an answer); the server stays up."""
    payloads = helpers.sample(plugin_name).PAYLOADS
    kinds = one_record_types(plugin_name)
    if not kinds:
        pytest.skip(f"{plugin_name} takes no body of one record")
    for kind in kinds:
        body = payloads[kind]
        for name, broken in (
            ("garbage", b"\xff\xfe\x00garbage" * 8),
            ("cut", body[: len(body) // 2]),
        ):
            r = post(plugin_server, broken, kind)
            assert r.status_code < 500, (kind, name, r.status_code, r.text)
            assert r.headers["Content-Type"].startswith(JSON), (kind, name, r.text)
            if name == "garbage":
                assert 400 <= r.status_code < 500 and r.json()["error"], (kind, r.text)
        assert requests.get(plugin_server.url + "/ping", timeout=2).status_code == 200


def _same(a, b) -> bool:
    """Two answers alike to 1e-4 in every number, however nested."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-4)
    return a == b


@pytest.mark.parametrize("content_type", [JSONLINES, CSV])
def test_a_line_body_reads_the_same_with_or_without_its_last_newline_and_with_crlf(
    plugin_name, plugin_server, content_type
):
    """Batch transform hands over the lines as they are in S3: the last may lack its
    newline, and a file written on Windows ends each in CRLF. Every line is one record."""
    if content_type not in plugin_of(plugin_name).content_types:
        pytest.skip(f"{plugin_name} takes no {content_type}")
    lines = helpers.sample(plugin_name).PAYLOADS[content_type].decode().splitlines()
    variants = {
        "newline": "\n".join(lines) + "\n",
        "none": "\n".join(lines),
        "crlf": "\r\n".join(lines) + "\r\n",
    }
    got = {}
    for name, body in variants.items():
        r = post(plugin_server, body.encode(), content_type, JSONLINES)
        assert r.status_code == 200, (name, r.text)
        got[name] = answers(r)
        assert len(got[name]) == len(lines), (name, got[name])
    assert got["none"] == got["newline"] == got["crlf"]


def _close(a: dict, b: dict) -> bool:
    flat = lambda d: {k: v for k, v in d.items() if not isinstance(v, (dict, list))}  # noqa: E731
    fa, fb = flat(a), flat(b)
    return fa.keys() == fb.keys() and all(
        fa[k] == pytest.approx(fb[k], abs=1e-4) if isinstance(fa[k], float) else fa[k] == fb[k]
        for k in fa
    )


BAD = [
    pytest.param(b"", JSON, JSON, 400, id="empty body"),
    pytest.param(b"<a/>", "application/xml", JSON, 415, id="unsupported content type"),
    pytest.param(None, JSON, "image/png", 406, id="unsupported accept"),
    pytest.param(b"{", JSON, JSON, 400, id="broken json"),
    pytest.param(b"[]", JSON, JSON, 400, id="no records"),
    pytest.param(b"\xff\xfe\xfd", JSON, JSON, 400, id="not utf-8"),
    pytest.param(b"not json\n", JSONLINES, JSON, 400, id="broken json lines"),
    pytest.param(b"\xff\n", CSV, JSON, 400, id="csv not utf-8"),
    pytest.param(b"x" * (7 * 1024 * 1024), JSON, JSON, 413, id="over the size limit"),
]


@pytest.mark.parametrize("body,content_type,accept,status", BAD)
def test_bad_requests_get_a_json_4xx_and_the_server_stays_up(
    plugin_name, plugin_server, body, content_type, accept, status
):
    if body is None:
        body = helpers.sample(plugin_name).PAYLOADS[JSON]
    if (
        content_type in (JSONLINES, CSV)
        and content_type not in plugin_of(plugin_name).content_types
    ):
        status = 415  # a plug-in that does not take this type says so first
    r = post(plugin_server, body, content_type, accept)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith(JSON) and r.json()["error"]
    assert requests.get(plugin_server.url + "/ping", timeout=2).status_code == 200


def test_wrong_path_and_method(plugin_server):
    assert requests.get(plugin_server.url + "/invocations", timeout=5).status_code == 405
    assert requests.get(plugin_server.url + "/nope", timeout=5).status_code == 404


def test_short_soak_every_answer_is_its_own(plugin_name, plugin_server):
    """8 concurrent clients, 240 requests of every content type: every answer is 200,
    one per record, and the same as the one the request got alone (bounded in time)."""
    payloads = helpers.sample(plugin_name).PAYLOADS
    reference = {kind: answers(post(plugin_server, body, kind)) for kind, body in payloads.items()}
    problems, done = [], []
    lock = threading.Lock()

    def client(i: int) -> None:
        session = requests.Session()
        for n in range(30):
            kind = list(payloads)[(i + n) % len(payloads)]
            r = session.post(
                plugin_server.url + "/invocations",
                data=payloads[kind],
                headers={"Content-Type": kind, "Accept": JSON},
                timeout=30,
            )
            ok = r.status_code == 200 and len(answers(r)) == helpers.records_in(kind)
            ok = ok and all(_close(a, b) for a, b in zip(answers(r), reference[kind], strict=True))
            with lock:
                (done if ok else problems).append((kind, r.status_code, r.text[:200]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems, problems[:3]
    assert len(done) == 240


# --- every record in its place ---------------------------------------------------------
def _quote_left_open(csv_body: bytes) -> bytes:
    """The plug-in's CSV payload with a quote opened before the first line's last field
    and never closed: read line by line, each line is the record it was."""
    lines = csv_body.decode().splitlines(keepends=True)
    head, comma, last = lines[0].rpartition(",")
    assert '"' not in last, "the sample's first line must end in an unquoted field"
    lines[0] = head + comma + '"' + last
    return "".join(lines).encode()


def test_a_csv_quote_left_open_is_a_400_naming_its_line(plugin_name, plugin_server):
    if CSV not in plugin_of(plugin_name).content_types:
        pytest.skip(f"{plugin_name} takes no CSV")
    body = _quote_left_open(helpers.sample(plugin_name).PAYLOADS[CSV])
    r = post(plugin_server, body, CSV)
    assert r.status_code == 400, r.text
    assert re.match(r"CSV line \d", r.json()["error"]), r.json()


@pytest.fixture(scope="module")
def batch_server(plugin_trained):
    """The plug-in's model as batch transform runs it (SAGEMAKER_BATCH=true)."""
    env = {"MODEL_SERVER_PRECISION": "fp32", "SAGEMAKER_BATCH": "true"}
    with helpers.Server(plugin_trained, env=env) as srv:
        srv.wait_ready()
        yield srv


@pytest.mark.parametrize("accept", [JSONLINES, CSV])
def test_under_batch_transform_each_input_line_gets_its_answer_line(
    plugin_name, batch_server, accept
):
    """SageMaker splits batch input at newlines whatever the quoting: a line that opens
    a quote is still one record, answered on its own line, with the answer it had."""
    plugin = plugin_of(plugin_name)
    if CSV not in plugin.content_types or accept not in plugin.accept_types:
        pytest.skip(f"{plugin_name} takes no CSV or answers no {accept}")
    original = helpers.sample(plugin_name).PAYLOADS[CSV]
    expected = post(batch_server, original, CSV, accept)
    assert expected.status_code == 200, expected.text
    r = post(batch_server, _quote_left_open(original), CSV, accept)
    assert r.status_code == 200, r.text
    assert len(r.text.splitlines()) == len(original.decode().splitlines()) == 3
    for got, want in zip(answers(r), answers(expected), strict=True):
        if accept == CSV:
            assert got[0] == want[0] and float(got[1]) == pytest.approx(float(want[1]), abs=1e-4)
        else:
            assert _close(got, want)


@pytest.fixture(scope="module")
def single_record_batch_server(plugin_trained):
    """Batch transform of an S3 prefix of one-record objects (images): SplitType None,
    BatchStrategy SingleRecord, as `launcher transform` starts it for such a type."""
    env = {
        "MODEL_SERVER_PRECISION": "fp32",
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6",
    }
    with helpers.Server(plugin_trained, env=env) as srv:
        srv.wait_ready()
        yield srv


def test_under_batch_transform_each_one_record_object_gets_its_answer(
    plugin_name, plugin_server, single_record_batch_server
):
    """Each object of the prefix is one request: answered as a real-time endpoint answers
    it, one record, and the execution parameters say one record per request."""
    payloads = helpers.sample(plugin_name).PAYLOADS
    kinds = one_record_types(plugin_name)
    if not kinds:
        pytest.skip(f"{plugin_name} takes no body of one record")
    params = requests.get(single_record_batch_server.url + "/execution-parameters", timeout=10)
    assert params.json()["BatchStrategy"] == "SINGLE_RECORD", params.text
    for kind in kinds:
        r = post(single_record_batch_server, payloads[kind], kind)
        assert r.status_code == 200, (kind, r.text)
        assert len(answers(r)) == 1, (kind, r.text)
        assert _same(answers(r), answers(post(plugin_server, payloads[kind], kind))), kind
