"""The real serving stack (model/serve: nginx -> gunicorn/gevent -> Flask) on loopback,
serving a model that model/train wrote with the tiny backbone."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests import helpers

LABELS = {"account", "billing", "shipping", "technical"}
TEXTS = [
    "my package never arrived",
    "I was charged twice, please refund",
    "the app crashes on start",
    'a text with "quotes", commas\nand a newline',
]


def post(server, body, content_type="application/json", accept=None, **kw):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    data = (
        json.dumps(body)
        if content_type == "application/json" and not isinstance(body, (bytes, str))
        else body
    )
    return requests.post(server.url + "/invocations", data=data, headers=headers, timeout=60, **kw)


def check_record(rec):
    assert rec["label"] in LABELS
    assert set(rec["probabilities"]) == LABELS
    assert abs(sum(rec["probabilities"].values()) - 1) < 1e-3
    assert rec["score"] == max(rec["probabilities"].values())


@pytest.fixture(scope="module")
def reference(server):
    """Each text's prediction when sent alone: what every other path must reproduce."""
    out = {}
    for text in TEXTS:
        r = post(server, {"inputs": text})
        assert r.status_code == 200, r.text
        out[text] = r.json()["predictions"][0]
    return out


def same(a, b):
    assert a["label"] == b["label"]
    for k in a["probabilities"]:
        assert a["probabilities"][k] == pytest.approx(b["probabilities"][k], abs=2e-3)


def test_a_lone_worker_on_two_threads_answers_a_large_batch_as_each_text_alone(
    trained_model, reference
):
    """One worker with two threads computes alone: a request of 40 texts runs as two
    parts at once on two OS threads under gevent (`Runtime.in_parts`), in order."""
    env = {"MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_THREADS": "2"}
    with helpers.Server(trained_model, env={**env, "MODEL_SERVER_PRECISION": "fp32"}) as srv:
        srv.wait_ready()
        texts = [TEXTS[i % len(TEXTS)] for i in range(40)]
        r = post(srv, {"inputs": texts})
        assert r.status_code == 200, r.text
        for text, rec in zip(texts, r.json()["predictions"], strict=True):
            same(rec, reference[text])
        assert "threads=2" in srv.output()  # the model's load line: no core share, 2 threads


def test_ping(server):
    r = requests.get(server.url + "/ping", timeout=2)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": TEXTS},
        {"instances": TEXTS},
        TEXTS,
        {"inputs": [{"text": t} for t in TEXTS]},
    ],
)
def test_json_shapes(server, reference, body):
    r = post(server, body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    preds = r.json()["predictions"]
    assert len(preds) == len(TEXTS)
    for text, rec in zip(TEXTS, preds, strict=True):
        check_record(rec)
        same(rec, reference[text])


def test_single_string_forms(server, reference):
    for body in ({"inputs": TEXTS[0]}, json.dumps(TEXTS[0])):
        r = post(server, body)
        assert r.status_code == 200, r.text
        same(r.json()["predictions"][0], reference[TEXTS[0]])
    r = post(server, TEXTS[1].encode(), content_type="text/plain; charset=utf-8")
    assert r.status_code == 200
    same(r.json()["predictions"][0], reference[TEXTS[1]])


def test_jsonlines_in_and_out_one_line_per_record(server, reference):
    body = "".join(json.dumps(t) + "\n" for t in TEXTS[:2]) + json.dumps({"text": TEXTS[2]}) + "\n"
    r = post(server, body, "application/jsonlines", accept="application/jsonlines")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/jsonlines")
    lines = r.text.splitlines()
    assert len(lines) == 3
    for text, line in zip(TEXTS[:3], lines, strict=True):
        same(json.loads(line), reference[text])


def test_csv_in_and_out_one_line_per_row(server, reference):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[t] for t in TEXTS])
    r = post(server, buf.getvalue(), "text/csv", accept="text/csv")
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text)))
    assert len(rows) == len(TEXTS) == len(r.text.splitlines())
    for text, row in zip(TEXTS, rows, strict=True):
        assert row[0] == reference[text]["label"]
        assert float(row[1]) == pytest.approx(reference[text]["score"], abs=2e-3)
        assert len(row) == 2 + len(LABELS)


def test_accept_with_q_values(server):
    r = post(server, {"inputs": TEXTS[:1]}, accept="text/html;q=0.9, text/csv;q=0.5")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(
    "kwargs,status,message",
    [
        ({"body": b"{not json", "content_type": "application/json"}, 400, "not valid JSON"),
        ({"body": {"wrong": 1}}, 400, "needs an 'inputs'"),
        ({"body": {"inputs": []}}, 400, "empty list"),
        ({"body": {"inputs": ["ok", ""]}}, 400, "inputs[1] is an empty string"),
        ({"body": {"inputs": [1, 2]}}, 400, "inputs[0] must be a string"),
        ({"body": b"\xff\xfe\xfa", "content_type": "text/plain"}, 400, "not valid UTF-8"),
        ({"body": b"", "content_type": "text/plain"}, 400, "body is empty"),
        ({"body": b"a,b\n", "content_type": "text/csv"}, 400, "expected one text per row"),
        ({"body": b"x", "content_type": "image/png"}, 415, "unsupported Content-Type"),
        ({"body": {"inputs": "x"}, "accept": "image/png"}, 406, "unsupported Accept"),
    ],
)
def test_bad_requests_get_json_errors(server, kwargs, status, message):
    body = kwargs.pop("body")
    r = post(server, body, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert message in r.json()["error"]


def test_payload_over_the_limit_is_413_json(server):
    body = json.dumps({"inputs": ["x" * (7 * 1024 * 1024)]})
    r = post(server, body)
    assert r.status_code == 413
    assert "exceeds" in r.json()["error"]


def test_wrong_path_and_method(server):
    r = requests.get(server.url + "/nope", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    r = requests.get(server.url + "/invocations", timeout=5)
    assert r.status_code == 405 and "error" in r.json()


def test_server_header_hides_version(server):
    assert requests.get(server.url + "/ping", timeout=2).headers.get("Server") == "nginx"


def test_cpu_default_is_a_worker_per_core_sharing_the_cores(server):
    """Up to 4 workers; a worker computing alone uses every core (`cores`)."""
    cores = len(os.sched_getaffinity(0))
    workers = min(cores, 4)
    log = server.output()
    shared = cores if workers > 1 else 0
    assert f"workers={workers} threads={max(1, cores // workers)} shared_cores={shared}" in log
    # /ping answers once one worker is ready; the others may still be loading.
    deadline = time.monotonic() + 60
    while server.output().count("model loaded") < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.output().count("model loaded") == workers
    assert server.output().count("compiled=yes") == workers  # bert.PackedLayer, every worker


def test_execution_parameters(server):
    r = requests.get(server.url + "/execution-parameters", timeout=5)
    assert r.json() == {
        "MaxConcurrentTransforms": min(len(os.sched_getaffinity(0)), 4),  # one per worker
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_concurrent_clients_get_their_own_answers(server, reference):
    """32 clients at once, each a different mix of texts: batching must not mix them up."""

    def one(i):
        texts = [TEXTS[(i + j) % len(TEXTS)] for j in range(1 + i % 3)]
        r = post(server, {"inputs": texts})
        assert r.status_code == 200, r.text
        return texts, r.json()["predictions"]

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(96)))
    for texts, preds in results:
        assert len(preds) == len(texts)
        for text, rec in zip(texts, preds, strict=True):
            same(rec, reference[text])


def test_ping_answers_while_a_long_batch_computes(server):
    big = {"inputs": [f"long text number {i} " * 10 for i in range(10_000)]}  # the max
    done = threading.Event()
    result = {}

    def send():
        result["r"] = post(server, big)
        done.set()

    t = threading.Thread(target=send)
    t.start()
    time.sleep(0.5)  # the big request is now being computed
    latencies = []
    while not done.is_set() and len(latencies) < 10:
        start = time.monotonic()
        assert requests.get(server.url + "/ping", timeout=2).status_code == 200
        latencies.append(time.monotonic() - start)
        time.sleep(0.05)
    assert len(latencies) >= 3, "the big request finished too soon to prove anything"
    assert max(latencies) < 0.5
    t.join(180)
    assert result["r"].status_code == 200
    assert len(result["r"].json()["predictions"]) == 10_000


def test_bind_to_port_batch_and_torchscript_settings(trained_model):
    env = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "MODEL_SERVER_PRECISION": "fp32",
        "MODEL_SERVER_TORCHSCRIPT": "false",
    }
    port = helpers.free_port()
    with helpers.Server(trained_model, env=env, port=port) as srv:
        srv.wait_ready()
        assert srv.url.endswith(f":{port}")
        assert "compiled=no" in srv.output() and "compiled=yes" not in srv.output()
        params = requests.get(srv.url + "/execution-parameters", timeout=5).json()
        assert params == {
            "MaxConcurrentTransforms": 3,
            "BatchStrategy": "SINGLE_RECORD",
            "MaxPayloadInMB": 100,
        }
        # batch transform's payload limit is really in force: 7 MB passes now
        body = "\n".join(json.dumps("x " * 1000) for _ in range(3700)).encode()
        assert len(body) > 7 * 1024 * 1024
        r = post(srv, body, "application/jsonlines", accept="application/jsonlines")
        assert r.status_code == 200, r.text[:300]
        assert len(r.text.splitlines()) == 3700


def test_default_precision_agrees_with_fp32(trained_model, server):
    """The default precision (bf16 where the CPU's bf16 units measure faster, else fp32)
    must give fp32's label wherever fp32 is not on the fence."""
    texts = [f"text {i} " + TEXTS[i % len(TEXTS)] for i in range(64)]
    fp32 = post(server, {"inputs": texts}).json()["predictions"]
    with helpers.Server(trained_model) as srv:
        srv.wait_ready()
        default = post(srv, {"inputs": texts}).json()["predictions"]
        out = srv.output()
    # One worker measured the CPU; any other read its figure (`shared=yes`; a worker may
    # still be loading: only one need have said `model loaded`), and each computes in
    # what the measurement chose.
    probes = set(helpers.bf16_pays(out))
    measured = [line for line in out.splitlines() if "cpu bf16 probe" in line]
    assert sum("shared=yes" not in line for line in measured) == 1, out[-3000:]
    chosen = set(re.findall(r"model loaded .*precision=(\w+)", out))
    assert len(probes) == 1 and chosen, out[-3000:]
    assert chosen == {"bf16" if probes == {"yes"} else "fp32"}
    for a, b in zip(fp32, default, strict=True):
        check_record(b)
        top = sorted(a["probabilities"].values())
        if top[-1] - top[-2] > 0.02:
            assert a["label"] == b["label"]
        for k in a["probabilities"]:
            assert abs(a["probabilities"][k] - b["probabilities"][k]) < 0.02


def test_sigterm_finishes_the_request_in_flight(trained_model):
    with helpers.Server(trained_model) as srv:
        srv.wait_ready()
        result = {}

        def send():
            result["r"] = post(srv, {"inputs": [f"text {i} " * 12 for i in range(2000)]})

        t = threading.Thread(target=send)
        t.start()
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert result["r"].status_code == 200
        assert len(result["r"].json()["predictions"]) == 2000
        assert srv.proc.wait(30) == 0
        assert "stopping signal=SIGTERM" in srv.output()


def test_serve_exits_when_a_child_dies(trained_model):
    import os

    with helpers.Server(trained_model) as srv:
        srv.wait_ready()
        pid = int(next((d / "nginx.pid").read_text() for d in _runtime_dirs(srv)))
        os.kill(pid, signal.SIGKILL)
        assert srv.proc.wait(30) == 1
        assert "nginx exited" in srv.output()


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_serve_takes_nginx_and_gunicorn_with_it(trained_model):
    """SIGKILL leaves serve no chance to forward a stop: the kernel sends it (gunicorn
    SIGTERM, nginx SIGQUIT), so no server is left answering on the port."""
    with helpers.Server(trained_model) as srv:
        srv.wait_ready()
        children = _children(srv.proc.pid)
        assert len(children) == 2, children  # gunicorn's master and nginx's
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        try:
            deadline = time.monotonic() + 30
            while any(map(_alive, children)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(map(_alive, children)), srv.output()[-2000:]
            with pytest.raises(requests.ConnectionError):
                requests.get(srv.url + "/ping", timeout=5)
        finally:  # each child leads its process group: leave no server behind
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def _runtime_dirs(srv):
    import re
    from pathlib import Path

    # the runtime dir is printed by nginx's config path in gunicorn's socket line
    found = re.findall(r"unix:(/\S+)/gunicorn\.sock", srv.output())
    return [Path(found[0])]


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda m: shutil.rmtree(m), "no model directory"),
        (lambda m: (m / "labels.json").unlink(), "labels.json is missing"),
        (lambda m: (m / "model.ckpt").write_bytes(b"garbage"), "not a torch checkpoint"),
        (lambda m: (m / "backbone" / "config.json").write_text("{"), "config.json is not valid"),
    ],
)
def test_missing_or_corrupt_model_fails_fast(trained_model, tmp_path, damage, message):
    base = tmp_path / "opt_ml"
    shutil.copytree(trained_model / "model", base / "model")
    damage(base / "model")
    with helpers.Server(base) as srv:
        assert srv.proc.wait(30) == 1
        assert message in srv.output()


def test_checkpoint_that_does_not_load_stops_the_server(trained_model, tmp_path):
    """Passes the quick checks (a zip file) but fails in the worker: serve must exit
    non-zero, never answer /ping with 200."""
    import zipfile

    base = tmp_path / "opt_ml"
    shutil.copytree(trained_model / "model", base / "model")
    with zipfile.ZipFile(base / "model" / "model.ckpt", "w") as z:
        z.writestr("archive/data.pkl", b"not a pickle")
    with helpers.Server(base) as srv:
        deadline = time.monotonic() + 60
        while srv.proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                assert requests.get(srv.url + "/ping", timeout=2).status_code != 200
            time.sleep(0.2)
        assert srv.proc.returncode == 1
        assert "cannot load model.ckpt" in srv.output()
