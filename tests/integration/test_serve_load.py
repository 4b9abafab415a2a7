"""The real stack under load and faults, on loopback: a soak, a SIGKILLed worker, and a
worker whose forward pass runs past MODEL_SERVER_TIMEOUT.

Every server here runs in fp32 with one gunicorn worker (on CPU the default is one per
core): the killed or replaced worker is then the only one. In fp32 a
text's answer does not depend on what shares its batch (measured: within 1e-6), so each
answer is checked against its own input's reference, and the reference texts are far
enough apart that an answer given to the wrong request cannot pass the check.

Every loop is bounded in count and time. The figures each test prints (run pytest with
-s to see them) are the ones quoted in docs/serving.md (Reliability).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests import helpers

FP32 = {"MODEL_SERVER_PRECISION": "fp32", "MODEL_SERVER_WORKERS": "1"}
TOL = 5e-5  # answers agree to 1e-6; the reference texts differ by far more (checked)
WORDS = [
    "parcel",
    "refund",
    "charged",
    "twice",
    "password",
    "login",
    "crash",
    "app",
    "invoice",
    "delivery",
    "late",
    "broken",
    "screen",
    "account",
    "locked",
    "card",
    "declined",
    "tracking",
    "number",
    "update",
    "email",
    "reset",
]
_rng = random.Random(7)
TEXTS = [
    " ".join(_rng.choice(WORDS) for _ in range(_rng.randint(2, 12))) + f" #{i}" for i in range(60)
]

# Stated bounds (docs/serving.md quotes them).
# The soak is sized by what it proves, not by a round number: 2,000 requests of 1 to 4
# texts from 32 clients are ~5,000 records in batches mixed from many requests (a wrong
# answer from a mixed-up batch shows at once), about a hundred /ping samples (0.2 s apart
# over the 15-25 s the soak takes) for the p99, and a leak bound of the same per-request
# strength as before (6,000 requests and 32 MB were 5.5 KB per request; measured growth
# is 1-3 MB, under a third of this bound).
SOAK_REQUESTS = 2000  # after a 500-request warm-up
SOAK_CLIENTS = 32
PING_P99_S = 2.0
RSS_GROWTH_KB_PER_REQUEST = 5.5  # a leak of this much per request fails the soak
RSS_GROWTH_MB = SOAK_REQUESTS * RSS_GROWTH_KB_PER_REQUEST / 1024  # 10.7 MB over the soak
RECOVERY_S = 30  # /ping 200 again after a worker was killed or replaced (tiny model)
# A bound on the soak's time, not a figure: with `make test`'s other workers (and anything
# else) on the same 2 cores, 6,000 requests once took over 90 s at 52 req/s.
SOAK_DEADLINE_S = 300


# --- helpers ---------------------------------------------------------------------------
def references(srv) -> dict[str, dict]:
    """Each text's answer when sent alone, and proof that they are told apart by TOL."""
    out = {}
    for text in TEXTS:
        r = requests.post(srv.url + "/invocations", json={"inputs": text}, timeout=30)
        assert r.status_code == 200, r.text
        out[text] = r.json()["predictions"][0]
    vectors = [list(out[t]["probabilities"].values()) for t in TEXTS]
    closest = min(
        max(abs(a - b) for a, b in zip(u, v, strict=True))
        for u, v in itertools.combinations(vectors, 2)
    )
    assert closest > 20 * TOL, "reference texts too alike to catch a mixed-up answer"
    return out


def matches(rec: dict, ref: dict) -> bool:
    return rec["label"] == ref["label"] and all(
        abs(rec["probabilities"][k] - p) <= TOL for k, p in ref["probabilities"].items()
    )


def worker_pids(srv) -> list[int]:
    """The gunicorn master's live children (its workers)."""
    master = int(re.findall(r"Listening at: \S+ \((\d+)\)", srv.output())[0])
    return helpers.child_pids(master)


def the_worker(srv, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(srv)
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.05)
    raise AssertionError(f"expected one gunicorn worker, found {worker_pids(srv)}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def gone(pid: int) -> bool:
    """Reaped by its parent. Not merely a zombie: the main thread turns zombie while the
    other threads still exit, and the process's sockets close only with the last of
    them (tens of ms with a model's memory to unmap); a request that nginx hands to one
    of those sockets in that time is on the dying worker too."""
    return not Path(f"/proc/{pid}").exists()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection error or client timeout)
    problem: str | None  # None: a 200 whose every record matches its own input
    content_type: str = ""


@dataclass
class Load:
    """`clients` threads, each with its own session, sending 1 to 4 reference texts in
    random order per request and checking every answer; stops after `total` requests,
    at `deadline_s`, or when `stop` is set."""

    srv: helpers.Server
    refs: dict[str, dict]
    clients: int
    total: int
    deadline_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    results: list[Result] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._sent = 0
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]

    def _take(self) -> bool:
        with self._lock:
            if self._sent >= self.total or self.stop.is_set():
                return False
            self._sent += 1
            return True

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        end = time.monotonic() + self.deadline_s
        while time.monotonic() < end and self._take():
            texts = rng.sample(TEXTS, rng.randint(1, 4))
            started = time.monotonic()
            try:
                r = session.post(self.srv.url + "/invocations", json={"inputs": texts}, timeout=60)
            except requests.RequestException as exc:
                self._record(Result(started, time.monotonic(), None, repr(exc)))
                session = requests.Session()
                continue
            ended = time.monotonic()
            problem = None
            if r.status_code != 200:
                problem = r.text[:200]
            else:
                preds = r.json()["predictions"]
                if len(preds) != len(texts) or not all(
                    matches(rec, self.refs[t]) for t, rec in zip(texts, preds, strict=False)
                ):
                    problem = f"wrong answer for {texts}: {preds}"
            self._record(
                Result(started, ended, r.status_code, problem, r.headers.get("Content-Type", ""))
            )

    def _record(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self) -> list[Result]:
        for t in self._threads:
            t.join(self.deadline_s + 70)
        assert not any(t.is_alive() for t in self._threads), "a client never returned"
        return self.results


class Pinger:
    """GET /ping every `every` seconds from its own thread: (time, seconds, status)."""

    def __init__(self, srv, every: float = 0.2, limit_s: float = 300):
        self.srv, self.every, self.limit_s = srv, every, limit_s
        self.samples: list[tuple[float, float, int | None]] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.limit_s
        while not self.stop.is_set() and time.monotonic() < end:
            started = time.monotonic()
            try:
                status = requests.get(self.srv.url + "/ping", timeout=5).status_code
            except requests.RequestException:
                status = None
            self.samples.append((started, time.monotonic() - started, status))
            self.stop.wait(self.every)

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self._thread.join(10)

    def first_200_after(self, t: float) -> float | None:
        return next((s for s, _, status in self.samples if s > t and status == 200), None)


@pytest.fixture(scope="module")
def one_worker(trained_model):
    """The soak's and the SIGKILL test's server, started once, and its references. The
    tests take whichever worker is serving when they begin: after the SIGKILL test, the
    replacement, which it left answering (its /ping 200 again)."""
    with helpers.Server(trained_model, env=FP32) as srv:
        srv.wait_ready()
        yield srv, references(srv)


# --- the soak --------------------------------------------------------------------------
@pytest.mark.slow
def test_soak(one_worker):
    """2,000 requests from 32 concurrent clients after a 500-request warm-up: no 5xx (no
    error at all), every answer its own input's, /ping p99 under 2 s throughout, and the
    worker's RSS growing by less than 5.5 KB per request (10.7 MB) from the end of the
    warm-up to the end."""
    srv, refs = one_worker
    pid = the_worker(srv)
    warm = Load(srv, refs, SOAK_CLIENTS, 500, deadline_s=SOAK_DEADLINE_S).start().join()
    assert all(r.problem is None for r in warm), [r.problem for r in warm if r.problem][:3]
    rss_before = rss_mb(pid)
    peak = [rss_before]

    with Pinger(srv, every=0.2) as pinger:
        load = Load(srv, refs, SOAK_CLIENTS, SOAK_REQUESTS, deadline_s=SOAK_DEADLINE_S).start()
        while load.running():
            peak.append(rss_mb(pid))
            time.sleep(0.5)
        results = load.join()
    rss_after = rss_mb(pid)
    assert the_worker(srv) == pid, "the worker was replaced during the soak"

    elapsed = max(r.ended for r in results) - min(r.started for r in results)
    pings = [seconds for _, seconds, _ in pinger.samples]
    latencies = [r.ended - r.started for r in results]
    server_errors = [r for r in results if r.status is None or r.status >= 500]
    problems = [r.problem for r in results if r.problem]
    print(
        f"\nsoak: {len(results)} requests from {SOAK_CLIENTS} clients in {elapsed:.1f} s "
        f"({len(results) / elapsed:.0f} req/s), {len(server_errors)} 5xx or no answer, "
        f"{len(problems)} failed or wrong; request p50 {percentile(latencies, 0.5) * 1000:.0f} ms "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms; /ping x{len(pings)} "
        f"p99 {percentile(pings, 0.99) * 1000:.0f} ms max {max(pings) * 1000:.0f} ms; "
        f"worker RSS {rss_before:.0f} MB -> {rss_after:.0f} MB (peak {max(peak):.0f} MB)"
    )
    assert len(results) == SOAK_REQUESTS, "the soak ran out of time"
    assert not server_errors
    assert not problems, problems[:3]
    assert len(pings) >= 10 and all(status == 200 for _, _, status in pinger.samples)
    assert percentile(pings, 0.99) < PING_P99_S
    assert rss_after - rss_before < RSS_GROWTH_MB


# --- a SIGKILLed worker ----------------------------------------------------------------
@pytest.mark.slow
def test_sigkilled_worker_is_replaced_and_only_its_requests_fail(one_worker):
    """One worker, so the requests on the killed worker are exactly
    those in flight while it died: not finished when SIGKILL was sent, and started
    before the process was reaped (until its last thread exits, its sockets stay open
    and nginx may still hand it a request on a kept-alive connection). With two workers
    a failure could not be pinned on either of them.

    Only those may fail: with nginx's JSON 502 or, when the worker died between writing
    a response's headers and its body, with that response cut short (nginx has already
    passed the headers on and cannot turn it into a 502); never a hang.
    Every request sent after the worker was gone succeeds with its own answer: the
    listening socket is the master's, so they wait for the replacement, which holds
    them until its model is loaded instead of answering 503. gunicorn logs the kill
    and boots a new worker; /ping is 200 again within RECOVERY_S."""
    srv, refs = one_worker
    victim = the_worker(srv)
    with Pinger(srv, every=0.1, limit_s=120) as pinger:
        load = Load(srv, refs, clients=4, total=20_000, deadline_s=90).start()
        time.sleep(1.5)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while not gone(victim) and time.monotonic() - killed < 10:
            time.sleep(0.001)
        dead = time.monotonic()
        assert gone(victim)
        deadline = killed + RECOVERY_S
        while pinger.first_200_after(dead) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # And some more load on the new worker: until 20 requests sent after the death
        # were answered (a fixed 2 s gave 16 on a loaded machine), bounded.
        more = time.monotonic() + 30
        while sum(r.started > dead for r in list(load.results)) < 20 and time.monotonic() < more:
            time.sleep(0.05)
        load.stop.set()
        results = load.join()
    successor = the_worker(srv)
    log = srv.output()

    back = pinger.first_200_after(dead)
    in_flight = [r for r in results if r.started < dead and r.ended > killed]
    failed = [r for r in results if r.problem]
    after = [r for r in results if r.started > dead]
    print(
        f"\nsigkill: {len(results)} requests, {len(in_flight)} in flight at the kill, "
        f"{len(failed)} failed ({sorted({r.status for r in failed}, key=str)}), "
        f"{len(after)} sent after it all answered; worker dead {(dead - killed) * 1000:.0f} ms "
        f"after SIGKILL; /ping 200 again {back - killed if back else float('nan'):.1f} s after it"
    )
    assert back is not None and back - killed < RECOVERY_S
    assert successor != victim
    assert f"Worker (pid:{victim}) was sent SIGKILL" in log
    assert f"Booting worker with pid: {successor}" in log
    outside = [
        (round(r.started - killed, 3), round(r.ended - killed, 3), r.status, r.problem)
        for r in failed
        if r not in in_flight
    ]
    assert not outside, f"failed but not on the killed worker (s after the kill): {outside}"
    for r in failed:  # nginx's JSON 502, or a body cut short after its headers
        if r.status is None:
            assert "IncompleteRead" in r.problem, r.problem
            continue
        assert r.status == 502 and r.content_type.startswith("application/json"), r.problem
        assert json.loads(r.problem)["error"]
    assert len(after) >= 20 and all(r.problem is None for r in after)
    assert sum(r.ended < killed for r in results) >= 20  # and load before the kill


# --- a forward pass past MODEL_SERVER_TIMEOUT ------------------------------------------
LONG_REQUEST = {
    **FP32,
    "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
    "MODEL_SERVER_MAX_RECORDS": "20000",  # past the default 10,000: this is about time
}
BIG = {"inputs": [f"text number {i} " + "word " * 240 for i in range(12_000)]}


def big_then_queued(srv, timeout: float) -> dict[str, tuple[int, str, str, float]]:
    """BIG, and half a second later a one-text request queued behind it: each one's
    (status, content type, body, seconds), once both are answered."""
    answers: dict[str, tuple[int, str, str, float]] = {}

    def send(name, payload):
        started = time.monotonic()
        r = requests.post(srv.url + "/invocations", json=payload, timeout=60)
        content_type = r.headers.get("Content-Type", "")
        answers[name] = (r.status_code, content_type, r.text, time.monotonic() - started)

    threads = [threading.Thread(target=send, args=("big", BIG))]
    threads[0].start()
    time.sleep(0.5)
    threads.append(threading.Thread(target=send, args=("queued", {"inputs": "late"})))
    threads[1].start()
    for t in threads:
        t.join(timeout + 30)
    assert set(answers) == {"big", "queued"}, "a client hung"
    return answers


@pytest.mark.slow
def test_a_request_past_the_timeout_in_short_calls_answers_504_and_the_worker_serves_on(
    trained_model,
):
    """The same 12,000 texts at the default batch size: calls of 512 texts, each well
    within the timeout. The client gets its JSON 504 at about the timeout; the engine
    computes none of the request's later calls, so a request queued behind it is
    answered 200 soon after, by the same worker, which was never taken for stuck."""
    timeout = 2
    env = {**LONG_REQUEST, "MODEL_SERVER_TIMEOUT": str(timeout)}
    with helpers.Server(trained_model, env=env) as srv:
        srv.wait_ready()
        first = the_worker(srv)
        answers = big_then_queued(srv, timeout)
        worker = the_worker(srv)
        log = srv.output()
    status, _, body, seconds = answers["big"]
    error = json.loads(body)["error"]
    assert status == 504 and "12,000 records took longer than 2 s" in error, error
    assert "send fewer records per request" in error
    assert seconds < timeout + 3
    q_status, _, q_body, q_seconds = answers["queued"]
    assert q_status == 200 and json.loads(q_body)["predictions"], q_body
    assert q_seconds < timeout + 10  # behind the call in progress, not the whole request
    assert "forward pass stuck" not in log and worker == first


@pytest.mark.slow
def test_worker_past_the_timeout_answers_5xx_and_is_replaced(trained_model):
    """MODEL_SERVER_TIMEOUT=2 and one 15 MB request of 12,000 long texts in one call to
    the model (passes of 1,024: 16 of them make a call), which needs tens of times that on
    a CPU (no test hook: the engine's own watchdog). Its client gets a JSON 504 at about
    the timeout, not a hang; a request queued behind it a 5xx JSON too. The worker logs
    that it gives up and exits, gunicorn forks a new one (its own timeout never fires:
    the heartbeat goes on while the forward pass is stuck), /ping is 200 again within
    RECOVERY_S, and a good request gets its old answer."""
    timeout = 2
    env = {
        **LONG_REQUEST,
        "MODEL_SERVER_TIMEOUT": str(timeout),
        "MODEL_SERVER_MAX_BATCH_SIZE": "1024",
    }
    with helpers.Server(trained_model, env=env) as srv:
        srv.wait_ready()
        before = requests.post(srv.url + "/invocations", json={"inputs": TEXTS[0]}, timeout=30)
        assert before.status_code == 200
        first = the_worker(srv)
        with Pinger(srv, every=0.1, limit_s=120) as pinger:
            answers = big_then_queued(srv, timeout)
            answered = time.monotonic()
            deadline = answered + RECOVERY_S
            while (not gone(first) or pinger.first_200_after(answered) is None) and (
                time.monotonic() < deadline
            ):
                time.sleep(0.05)
            back = pinger.first_200_after(answered)
        after = requests.post(srv.url + "/invocations", json={"inputs": TEXTS[0]}, timeout=30)
        successor = the_worker(srv)
        log = srv.output()

    status, content_type, body, seconds = answers["big"]
    print(
        f"\ntimeout: the big request got {status} after {seconds:.1f} s "
        f"(MODEL_SERVER_TIMEOUT={timeout}), the queued one {answers['queued'][0]}; "
        f"/ping 200 again {back - answered if back else float('nan'):.1f} s after the answers"
    )
    assert status in (502, 504) and content_type.startswith("application/json")
    assert json.loads(body)["error"]
    assert seconds < timeout + 3
    q_status, q_type, q_body, q_seconds = answers["queued"]
    assert q_status >= 500 and q_type.startswith("application/json") and json.loads(q_body)
    assert q_seconds < timeout + 3
    assert "forward pass stuck" in log and "replacing this worker" in log
    assert "WORKER TIMEOUT" not in log  # our watchdog, not gunicorn's heartbeat
    assert successor != first and f"Booting worker with pid: {successor}" in log
    assert back is not None and back - answered < RECOVERY_S
    assert after.status_code == 200
    assert matches(after.json()["predictions"][0], before.json()["predictions"][0])
