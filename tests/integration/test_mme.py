"""A multi-model endpoint on the real stack (nginx -> gunicorn/gevent -> Flask) on
loopback: SageMaker's /models contract (load, list by pages, describe, unload, invoke)
for a model of every plug-in side by side, the memory budget's 507, hostile loads, a load
and an unload racing requests, and workers killed while models are loaded.

Every plug-in's tiny model is copied to <base>/models/<name>/model, where SageMaker
extracts a model.tar.gz, with "tabular-b": the tabular model with its output layer
shifted, so that the answers of two models of one plug-in differ and a mixed-up answer
shows. The answers are compared with the single-model service's (`service.Service`, the
code a single-model worker runs per request) on the same payloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests import helpers

JSON = "application/json"
MME = {
    "MODEL_SERVER_MULTI_MODEL": "true",
    "MODEL_SERVER_PRECISION": "fp32",
    "MODEL_SERVER_WORKERS": "2",
}


class _Canary:
    """A pickle that, if ever unpickled with weights_only=False, writes a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).write_text, ("ran",))


def _shift_output_layer(model_dir: Path) -> None:
    """Another model of the same plug-in: the output layer's bias moved, so that every
    answer differs from the original's."""
    import torch

    ckpt = model_dir / "model.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    state = checkpoint["state_dict"]
    bias = [k for k, v in state.items() if k.startswith("network.") and v.dim() == 1][-1]
    state[bias] = state[bias] + torch.linspace(-1.5, 1.5, state[bias].numel())
    torch.save(checkpoint, ckpt)


def _nan_output_layer(model_dir: Path) -> None:
    import torch

    ckpt = model_dir / "model.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    state = checkpoint["state_dict"]
    head = [k for k, v in state.items() if k.startswith("network.") and v.dim() == 2][-1]
    state[head][:] = float("nan")
    torch.save(checkpoint, ckpt)


@pytest.fixture(scope="module")
def base(trained_plugins, tmp_path_factory) -> Path:
    """/opt/ml of the endpoint: a model of every plug-in under models/, tabular-b, and
    the hostile model directories the load tests name (never loaded)."""
    import torch

    root = tmp_path_factory.mktemp("mme") / "opt_ml"
    models = root / "models"
    for name, trained in trained_plugins.items():
        shutil.copytree(trained / "model", models / name / "model")
    tabular = trained_plugins["tabular"] / "model"
    shutil.copytree(tabular, models / "tabular-b" / "model")
    _shift_output_layer(models / "tabular-b" / "model")
    # hostile or broken model directories
    (models / "evil").mkdir()
    (models / "evil" / "model").symlink_to(tabular)  # a link out of the models folder
    shutil.copytree(tabular, models / "no-marker" / "model")
    manifest = json.loads((tabular / "plugin.json").read_text())
    (models / "no-marker" / "model" / "plugin.json").write_text(
        json.dumps({**manifest, "module": "unittest"})
    )
    shutil.copytree(tabular, models / "pickle" / "model")
    canary = root.parent / "canary"
    torch.save(
        {"state_dict": {}, "x": _Canary(str(canary))}, models / "pickle" / "model" / "model.ckpt"
    )
    shutil.copytree(tabular, models / "corrupt" / "model")
    (models / "corrupt" / "model" / "schema.json").write_text("{")
    shutil.copytree(tabular, models / "nan" / "model")
    _nan_output_layer(models / "nan" / "model")
    (models / "not-a-model" / "model").mkdir(parents=True)
    return root


GOOD = ("tabular-b",)  # besides one model of each plug-in


def names(trained_plugins) -> list[str]:
    return [*trained_plugins, *GOOD]


def url_of(base: Path, name: str) -> str:
    return str(base / "models" / name / "model")


def load(srv, base: Path, name: str, **extra) -> requests.Response:
    body = {"model_name": name, "url": url_of(base, name), **extra}
    return requests.post(srv.url + "/models", json=body, timeout=90)


def invoke(srv, name: str, body: bytes, content_type: str = JSON, session=None, **headers):
    return (session or requests).post(
        f"{srv.url}/models/{name}/invoke",
        data=body,
        headers={"Content-Type": content_type, "Accept": JSON, **headers},
        timeout=60,
    )


def plugin_of(name: str) -> str:
    return "tabular" if name == "tabular-b" else name


@pytest.fixture(scope="module")
def server(base):
    with helpers.Server(base, env=MME) as srv:
        srv.wait_ready(60)
        yield srv


@pytest.fixture(scope="module")
def loaded(server, base, trained_plugins) -> list[str]:
    for name in names(trained_plugins):
        r = load(server, base, name)
        assert r.status_code == 200, (name, r.text, server.output()[-3000:])
        assert r.json()["modelName"] == name and r.json()["state"] == "loaded"
    return names(trained_plugins)


@pytest.fixture(scope="module")
def references(base, trained_plugins) -> dict[str, dict[str, list]]:
    """Each model's answers to its plug-in's sample payloads from the single-model
    service, in this process: {name: {content type: predictions}}."""
    from sagemaker_platform.config import ServeConfig
    from sagemaker_platform.service import Service

    out = {}
    for name in names(trained_plugins):
        cfg = ServeConfig(workers=1, precision="fp32", device="cpu")
        svc = Service(cfg, base / "models" / name / "model")
        assert svc.engine.wait_ready(120), name
        out[name] = {
            kind: json.loads(svc.invoke(body, kind, JSON)[0])["predictions"]
            for kind, body in helpers.sample(plugin_of(name)).PAYLOADS.items()
        }
    assert not same(out["tabular"], out["tabular-b"]), "tabular-b must answer differently"
    return out


def same(a, b) -> bool:
    """Two answers alike to 1e-4 in every number, however nested."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-4)
    return a == b


def json_error(r: requests.Response, status: int, part: str = "") -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith(JSON), r.headers
    assert part in r.json()["error"], r.json()


# --- the contract ----------------------------------------------------------------------
def test_ping_is_200_with_no_model_and_invocations_points_to_the_models(server):
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    r = requests.post(server.url + "/invocations", data=b"{}", headers={"Content-Type": JSON})
    json_error(r, 404, "multi-model endpoint")
    assert "multi_model=True" in server.output()


def test_every_model_answers_as_the_single_model_service(server, loaded, references):
    for name in loaded:
        for kind, body in helpers.sample(plugin_of(name)).PAYLOADS.items():
            r = invoke(server, name, body, kind, **{"X-Amzn-SageMaker-Target-Model": name})
            assert r.status_code == 200, (name, kind, r.text)
            assert same(r.json()["predictions"], references[name][kind]), (name, kind)


def test_the_list_walks_every_model_by_pages_of_one(server, loaded):
    seen, token = [], None
    for _ in range(len(loaded) + 2):
        params = {"max_results": "1", **({"next_page_token": token} if token else {})}
        page = requests.get(server.url + "/models", params=params, timeout=10).json()
        assert len(page["models"]) == 1, page
        seen += [m["modelName"] for m in page["models"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert seen == sorted(loaded)
    whole = requests.get(server.url + "/models", timeout=10).json()
    assert "nextPageToken" not in whole
    assert {m["modelName"]: m["modelUrl"] for m in whole["models"]} == {
        n: url_of(server_base(server), n) for n in loaded
    }
    for bad in ({"max_results": "0"}, {"max_results": "x"}, {"next_page_token": "%%%"}):
        json_error(requests.get(server.url + "/models", params=bad, timeout=10), 400)


def server_base(srv) -> Path:
    return Path(re.search(r"models_dir=(\S+)", srv.output()).group(1)).parent


def test_describe_and_the_409_and_404_paths(server, base, loaded):
    r = requests.get(server.url + "/models/tabular", timeout=10)
    assert r.status_code == 200, r.text
    described = r.json()
    assert described["modelUrl"] == url_of(base, "tabular") and described["plugin"] == "tabular"
    assert described["memoryMb"] > 0 and described["lastUsed"] is not None
    json_error(load(server, base, "tabular"), 409, "already loaded")
    json_error(requests.get(server.url + "/models/nope", timeout=10), 404, "not loaded")
    json_error(requests.delete(server.url + "/models/nope", timeout=10), 404, "not loaded")
    json_error(invoke(server, "nope", b'{"inputs": "x"}'), 404, "not loaded")


# --- hostile loads -----------------------------------------------------------------------
HOSTILE = [
    # (id, the POST /models body or a function of the base dir giving it, status, message)
    ("not-json", b'{"model_name": "x", ', 400, "not valid JSON"),
    ("a-list", b"[]", 400, "must be"),
    ("no-name", lambda b: {"url": url_of(b, "tabular")}, 400, "model_name"),
    ("dotdot-name", lambda b: {"model_name": "../x", "url": url_of(b, "tabular")}, 400, ""),
    ("10kb-name", lambda b: {"model_name": "n" * 10_000, "url": url_of(b, "tabular")}, 400, ""),
    (
        "forged-name",
        lambda b: {"model_name": "a\nval_f1=0.99", "url": url_of(b, "tabular")},
        400,
        "not valid",
    ),
    ("url-outside", lambda b: {"model_name": "x", "url": "/etc"}, 400, "outside"),
    (
        "url-dotdot",
        lambda b: {"model_name": "x", "url": f"{b}/models/tabular/../../.."},
        400,
        "outside",
    ),
    ("url-link-out", lambda b: {"model_name": "x", "url": url_of(b, "evil")}, 400, "outside"),
    ("url-relative", lambda b: {"model_name": "x", "url": "models/tabular/model"}, 400, ""),
    ("url-missing", lambda b: {"model_name": "x", "url": url_of(b, "gone")}, 404, "no such"),
    ("url-the-root", lambda b: {"model_name": "x", "url": f"{b}/models"}, 400, "outside"),
    ("not-a-model", lambda b: {"model_name": "x", "url": url_of(b, "not-a-model")}, 400, "plugin"),
    (
        "no-marker",
        lambda b: {"model_name": "x", "url": url_of(b, "no-marker")},
        400,
        "not a plug-in",
    ),
    ("pickle", lambda b: {"model_name": "x", "url": url_of(b, "pickle")}, 400, "model.ckpt"),
    (
        "corrupt-json",
        lambda b: {"model_name": "x", "url": url_of(b, "corrupt")},
        400,
        "schema.json",
    ),
    ("nan-weights", lambda b: {"model_name": "x", "url": url_of(b, "nan")}, 400, "warm-up"),
    ("huge-body", b'{"model_name": "' + b"x" * 100_000 + b'"}', 413, "at most"),
]


@pytest.mark.parametrize(
    "body,status,message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_or_broken_load_fails_that_model_alone(
    server, base, loaded, references, body, status, message
):
    data = body if isinstance(body, bytes) else json.dumps(body(base)).encode()
    r = requests.post(server.url + "/models", data=data, headers={"Content-Type": JSON}, timeout=90)
    json_error(r, status, message)
    assert not (base.parent / "canary").exists(), "the planted pickle ran"
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    listed = requests.get(server.url + "/models", timeout=10).json()["models"]
    assert sorted(m["modelName"] for m in listed) == sorted(loaded)  # nothing left behind
    body = helpers.sample("tabular").PAYLOADS[JSON]
    assert same(invoke(server, "tabular", body).json()["predictions"], references["tabular"][JSON])


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/models/" + "n" * 10_000, 414),
        ("DELETE", "/models/..%2Ftabular", 404),
        ("GET", "/models/a%0Aval_f1=0.99", 404),
        ("POST", "/models/" + "n" * 300 + "/invoke", 404),
        ("PUT", "/models/tabular", 405),
    ],
)
def test_hostile_names_in_the_path_get_a_json_4xx(server, loaded, method, path, status):
    r = requests.request(method, server.url + path, timeout=10)
    json_error(r, status)
    assert requests.get(server.url + "/models/tabular", timeout=10).status_code == 200


def test_log_lines_name_the_model_and_print_outside_names_inert(server, loaded):
    requests.get(server.url + "/models/val_f1=0.99", timeout=10)
    invoke(server, "nope", b"{}", **{"X-Amzn-SageMaker-Target-Model": "c.tar.gz val_f1=0.9"})
    time.sleep(0.3)
    log = server.output()
    for name in loaded:
        assert f"model listed model={name} plugin={plugin_of(name)} " in log
        assert re.search(rf"ready model={re.escape(name)} load_seconds=\S+ .* worker_pid=\d+", log)
    assert r"request rejected model=val_f1\=0.99 status=404" in log
    assert r"model=nope target_model=c.tar.gz val_f1\=0.9 status=404" in log
    app_lines = [line for line in log.splitlines() if " serve: " in line]
    assert not [line for line in app_lines if re.search(r"(?<!\\)val_f1=0\.9", line)]


# --- races -------------------------------------------------------------------------------
def test_a_load_and_an_unload_racing_requests_never_get_another_models_answer(
    server, base, loaded, references
):
    """Clients invoke tabular and tabular-b without pause while tabular-b is unloaded,
    loaded and unloaded again: tabular always gets its own answer; tabular-b gets its own,
    or a JSON 404 (not loaded) or 503 (loading, or unloaded under the request), never the
    other model's answer and never another error."""
    body = helpers.sample("tabular").PAYLOADS[JSON]
    assert requests.delete(server.url + "/models/tabular-b", timeout=10).status_code == 200
    stop, got, lock = threading.Event(), [], threading.Lock()
    answered = threading.Event()  # tabular-b's own answer came back at least once

    def client(name: str) -> None:
        session = requests.Session()
        while not stop.is_set():
            r = invoke(server, name, body, session=session)
            answer = r.json()
            with lock:
                got.append((name, r.status_code, answer))
            if name == "tabular-b" and r.status_code == 200:
                answered.set()

    threads = [threading.Thread(target=client, args=(n,)) for n in ("tabular", "tabular-b") * 3]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        r = load(server, base, "tabular-b")
        assert r.status_code == 200, (r.text, server.output()[-4000:])  # 504: says where
        # Each worker loads its own copy on its first request: on a busy machine that
        # takes seconds, so wait for an answer rather than a fixed time (requests that
        # came while a copy loaded waited for it, within the timeout).
        answered.wait(60)
        time.sleep(0.2)
        assert requests.delete(server.url + "/models/tabular-b", timeout=10).status_code == 200
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        # loaded again, as the other tests of this module expect, whatever happened above
        if requests.get(server.url + "/models/tabular-b", timeout=10).status_code == 404:
            assert load(server, base, "tabular-b").status_code == 200
    statuses = {}
    for name, status, answer in got:
        statuses.setdefault(name, set()).add(status)
        if status == 200:
            assert same(answer["predictions"], references[name][JSON]), (name, answer)
        else:
            assert name == "tabular-b" and status in (404, 503), (name, status, answer)
            assert answer["error"]
    assert statuses["tabular"] == {200}
    assert {200, 404} <= statuses["tabular-b"], statuses


# --- the memory budget -----------------------------------------------------------------
def test_the_memory_budget_answers_507_until_a_model_is_unloaded(base):
    """With SageMaker's own signal (SAGEMAKER_MULTI_MODEL) and one worker, a budget that
    holds the text and tabular models: the image model is a 507 naming the setting; once
    tabular is unloaded (as SageMaker does after a 507) it loads."""
    from sagemaker_platform import multimodel

    estimate = {
        n: multimodel.estimate_mb(Path(url_of(base, n)))
        for n in ("text_classifier", "tabular", "image_classifier")
    }
    budget = int(estimate["text_classifier"] + estimate["tabular"]) + 1
    assert budget < sum(estimate.values())
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        "MODEL_SERVER_WORKERS": "1",
        "MODEL_SERVER_MME_MEMORY_MB": str(budget),
        "MODEL_SERVER_PRECISION": "fp32",
    }
    with helpers.Server(base, env=env) as srv:
        srv.wait_ready(60)
        assert requests.get(srv.url + "/models", timeout=10).json() == {"models": []}
        assert load(srv, base, "text_classifier").status_code == 200
        assert load(srv, base, "tabular").status_code == 200
        json_error(load(srv, base, "image_classifier"), 507, "MODEL_SERVER_MME_MEMORY_MB")
        listed = requests.get(srv.url + "/models", timeout=10).json()["models"]
        assert [m["modelName"] for m in listed] == ["tabular", "text_classifier"]
        assert requests.delete(srv.url + "/models/tabular", timeout=10).status_code == 200
        assert load(srv, base, "image_classifier").status_code == 200
        body = helpers.sample("image_classifier").PAYLOADS[JSON]
        assert invoke(srv, "image_classifier", body).status_code == 200
        assert f"mme_memory_mb={budget}" in srv.output()


# --- a load past the timeout ----------------------------------------------------------
WAITING_PLUGIN = """
\"\"\"The tabular plug-in, whose load waits for a file to appear: a load that overruns.\"\"\"
import time
from pathlib import Path

from plugins.tabular import plugin as _tabular

GATE = Path({gate!r})


class WaitsForTheGate(type(_tabular)):
    def load(self, model_dir, runtime):
        while not GATE.exists():
            time.sleep(0.05)
        return super().load(model_dir, runtime)


plugin = WaitsForTheGate()
"""


def test_a_load_past_the_timeout_is_a_504_that_says_where_it_waits(base, tmp_path, references):
    """MODEL_SERVER_TIMEOUT=2 and a model whose plug-in's `load` waits for a file (kept
    outside the repository, on PYTHONPATH): POST /models answers a JSON 504 at the timeout
    and the worker logs one line saying where the load is; meanwhile the model is listed
    as loading (a second POST is a 409, a request a 503), and DELETE unlists another such
    load. Once the file appears the loads end: the first model is listed as loaded and
    answers, the deleted one stays unlisted."""
    package = tmp_path / "plugins_outside" / "waits_for_the_gate"
    package.mkdir(parents=True)
    (package / "SAGEMAKER_PLUGIN").write_text("a test plug-in\n")
    gate = tmp_path / "gate"
    (package / "__init__.py").write_text(WAITING_PLUGIN.format(gate=str(gate)))
    for name in ("waits", "waits-too"):
        model = base / "models" / name / "model"
        shutil.copytree(url_of(base, "tabular"), model)
        manifest = json.loads((model / "plugin.json").read_text())
        (model / "plugin.json").write_text(json.dumps({**manifest, "module": package.name}))
    env = {
        **MME,
        "MODEL_SERVER_WORKERS": "1",
        "MODEL_SERVER_TIMEOUT": "2",
        "PYTHONPATH": str(package.parent),
    }
    body = helpers.sample("tabular").PAYLOADS[JSON]
    with helpers.Server(base, env=env) as srv:

        def is_loaded(name: str) -> bool:
            described = requests.get(f"{srv.url}/models/{name}", timeout=10).json()
            return described.get("state") == "loaded"

        try:
            srv.wait_ready(60)
            # The worker's first load imports torch's lazily loaded modules, which on a slow
            # machine can outlast the 2 s alone (CI saw the 504's line point into importlib).
            # A plain tabular load first, however long it takes, leaves the gated loads only
            # their wait for the file.
            load(srv, base, "tabular")
            wait_until(lambda: is_loaded("tabular"), 60, "tabular never loaded", srv)
            started = time.monotonic()
            r = load(srv, base, "waits")
            json_error(r, 504, "still loading after 2 s")
            assert time.monotonic() - started < 10
            described = requests.get(srv.url + "/models/waits", timeout=10).json()
            assert described["state"] == "loading", described
            json_error(load(srv, base, "waits"), 409, "already loading")
            json_error(invoke(srv, "waits", body), 503, "")
            json_error(load(srv, base, "waits-too"), 504, "still loading")
            assert requests.delete(srv.url + "/models/waits-too", timeout=10).status_code == 200
            gate.touch()
            wait_until(lambda: is_loaded("waits"), 60, "never loaded", srv)
            r = invoke(srv, "waits", body)
            assert r.status_code == 200 and same(
                r.json()["predictions"], references["tabular"][JSON]
            )
            # the deleted model's load ends too (its engine logs "ready"), and lists nothing
            wait_until(lambda: "ready model=waits-too " in srv.output(), 30, "still loading", srv)
            json_error(requests.get(srv.url + "/models/waits-too", timeout=10), 404, "not loaded")
        except AssertionError as exc:  # with what the server said
            raise AssertionError(f"{exc}\n{srv.output()[-4000:]}") from None
        log = srv.output()
    lines = [line for line in log.splitlines() if "model load overran model=waits" in line]
    assert len(lines) == 2, log[-3000:]
    assert re.search(
        r"model load overran model=waits seconds=2 worker_pid=\d+ at=\S+ sleep < "
        r"__init__\.py:\d+ load < ",
        lines[0],
    ), lines[0]


# --- workers killed --------------------------------------------------------------------
def worker_pids(srv) -> list[int]:
    master = int(re.findall(r"Listening at: \S+ \((\d+)\)", srv.output())[0])
    return helpers.child_pids(master)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def wait_until(condition, timeout: float, what: str, srv) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}:\n{srv.output()[-4000:]}"
        time.sleep(0.1)


def holds_every_model(srv, pid: int, models: list[str]) -> bool:
    log = srv.output()
    return all(re.search(rf"ready model={re.escape(n)} .*worker_pid={pid}\b", log) for n in models)


def kill(srv, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), 10, f"worker {pid} not reaped", srv)


def every_model_answers(srv, models: list[str], references, clients: int = 1, rounds: int = 1):
    problems = []

    def client() -> None:
        session = requests.Session()
        for _ in range(rounds):
            for name in models:
                body = helpers.sample(plugin_of(name)).PAYLOADS[JSON]
                r = invoke(srv, name, body, session=session)
                if r.status_code != 200 or not same(
                    r.json()["predictions"], references[name][JSON]
                ):
                    problems.append((name, r.status_code, r.text[:200]))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not problems, problems[:3]


def test_workers_killed_while_models_are_loaded(server, loaded, references):
    """Two workers each hold every model. One is SIGKILLed: the other answers every model
    at once; gunicorn's replacement loads them (on demand and in the background) and
    answers. Then the other original is killed too: the replacement alone answers."""
    victim, survivor = worker_pids(server)
    for pid in (victim, survivor):
        wait_until(lambda p=pid: holds_every_model(server, p, loaded), 60, "not loaded", server)
    kill(server, victim)
    every_model_answers(server, loaded, references)  # the survivor, while gunicorn forks
    wait_until(lambda: len(worker_pids(server)) == 2, 30, "no replacement", server)
    (replacement,) = set(worker_pids(server)) - {survivor}
    every_model_answers(server, loaded, references, clients=4, rounds=3)
    wait_until(lambda: holds_every_model(server, replacement, loaded), 60, "not reloaded", server)
    kill(server, survivor)
    every_model_answers(server, loaded, references)  # the replacement, alone for now
    wait_until(lambda: len(worker_pids(server)) == 2, 30, "no second replacement", server)
    (second,) = set(worker_pids(server)) - {replacement}
    # (and a worker still booting when the server stops takes gunicorn's graceful 25 s)
    wait_until(lambda: holds_every_model(server, second, loaded), 60, "not reloaded", server)
    log = server.output()
    assert f"Worker (pid:{victim}) was sent SIGKILL" in log
    assert f"Booting worker with pid: {replacement}" in log
