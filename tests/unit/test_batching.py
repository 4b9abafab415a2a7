import threading
import time

import pytest
import torch

from sagemaker_platform.batching import BatchEngine, NotReady, Stuck


class Doubler:
    """A stand-in model: row i of the answer is [text length, batch size]."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.batch_sizes = []

    def warm_up(self):
        pass

    def predict(self, texts):
        self.batch_sizes.append(len(texts))
        time.sleep(self.delay)
        return torch.tensor([[float(len(t)), float(len(texts))] for t in texts])


def test_not_ready_until_loaded_and_warm():
    gate = threading.Event()
    model = Doubler()

    def load():
        gate.wait(5)
        return model

    engine = BatchEngine(load)
    with pytest.raises(NotReady, match="loading"):
        engine.predict(["x"], timeout=0.05)
    gate.set()
    assert engine.wait_ready(5)
    assert engine.predict(["abc"]).tolist() == [[3.0, 1.0]]


def test_concurrent_requests_share_batches_and_get_their_own_rows():
    model = Doubler(delay=0.05)
    engine = BatchEngine(lambda: model, max_batch_size=64)
    assert engine.wait_ready(5)
    results = {}

    def client(i):
        texts = ["x" * (i + 1)] * (1 + i % 3)
        results[i] = (texts, engine.predict(texts, timeout=10))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for texts, rows in results.values():
        assert rows[:, 0].tolist() == [float(len(t)) for t in texts]
    assert max(model.batch_sizes) > 3, "requests were never batched together"
    assert sum(model.batch_sizes) == sum(len(t) for t, _ in results.values())


def test_max_batch_size_bounds_merging():
    model = Doubler(delay=0.05)
    engine = BatchEngine(lambda: model, max_batch_size=4)
    engine.wait_ready(5)
    threads = [threading.Thread(target=engine.predict, args=(["a"],)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(model.batch_sizes) <= 4


def test_errors_reach_every_request_of_the_batch_and_the_engine_survives():
    class Flaky(Doubler):
        def predict(self, texts):
            if "boom" in texts:
                raise ValueError("boom")
            return super().predict(texts)

    engine = BatchEngine(Flaky)
    engine.wait_ready(5)
    with pytest.raises(ValueError):
        engine.predict(["boom"])
    assert engine.predict(["ok"]).tolist() == [[2.0, 1.0]]


def test_load_failure_is_reported():
    seen = []

    def load():
        raise RuntimeError("broken model")

    engine = BatchEngine(load, on_load_error=seen.append)
    engine._thread.join(5)
    assert not engine.ready
    assert isinstance(seen[0], RuntimeError)


def test_timeout():
    engine = BatchEngine(lambda: Doubler(delay=1.0))
    engine.wait_ready(5)
    with pytest.raises(TimeoutError):
        engine.predict(["slow"], timeout=0.1)


def test_a_request_during_loading_waits_for_the_model():
    """A worker gunicorn has just forked accepts connections before its model is up:
    those requests wait for it instead of failing."""
    gate = threading.Event()

    def load():
        gate.wait(5)
        return Doubler()

    engine = BatchEngine(load)
    threading.Timer(0.3, gate.set).start()
    started = time.monotonic()
    assert engine.predict(["abc"], timeout=5).tolist() == [[3.0, 1.0]]
    assert time.monotonic() - started >= 0.25


def test_after_a_load_failure_requests_fail_at_once():
    def load():
        raise RuntimeError("broken model")

    engine = BatchEngine(load, on_load_error=lambda exc: None)
    started = time.monotonic()
    with pytest.raises(NotReady, match="failed to load"):
        engine.predict(["x"], timeout=5)
    assert time.monotonic() - started < 2


class Gated(Doubler):
    """Blocks in predict_proba on texts containing "stuck" until released."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def predict(self, texts):
        if any("stuck" in t for t in texts):
            self.release.wait(10)
        return super().predict(texts)


def test_a_stuck_batch_is_given_up_and_on_stuck_runs_after_every_answer():
    model = Gated()
    calls = []
    outcomes = {}
    engine = BatchEngine(
        lambda: model,
        max_batch_size=1,  # so that the second request queues behind the stuck one
        stuck_after_s=0.5,
        on_stuck=lambda exc: calls.append((exc, dict(outcomes))),
    )
    assert engine.wait_ready(5)

    def client(name, texts):
        started = time.monotonic()
        try:
            engine.predict(texts, timeout=30)  # far beyond: the engine must answer first
            outcomes[name] = ("ok", time.monotonic() - started)
        except Exception as exc:
            outcomes[name] = (exc, time.monotonic() - started)

    stuck = threading.Thread(target=client, args=("stuck", ["stuck"]))
    stuck.start()
    time.sleep(0.1)
    queued = threading.Thread(target=client, args=("queued", ["behind"]))
    queued.start()
    stuck.join(5)
    queued.join(5)
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    model.release.set()

    assert isinstance(outcomes["stuck"][0], Stuck)
    assert 0.4 < outcomes["stuck"][1] < 3
    assert isinstance(outcomes["queued"][0], NotReady)
    assert len(calls) == 1
    exc, seen_when_called = calls[0]
    assert isinstance(exc, Stuck)
    assert set(seen_when_called) == {"stuck", "queued"}, "on_stuck ran before the answers"
    assert not engine.ready
    with pytest.raises(NotReady, match="being replaced"):
        engine.predict(["later"], timeout=5)


def test_a_slow_batch_under_the_limit_is_not_given_up():
    calls = []
    engine = BatchEngine(lambda: Doubler(delay=0.3), stuck_after_s=2, on_stuck=calls.append)
    engine.wait_ready(5)
    for _ in range(3):
        assert engine.predict(["abc"], timeout=5).tolist() == [[3.0, 1.0]]
    assert calls == [] and engine.ready


@pytest.mark.parametrize("refill", [True, False])
def test_clients_that_resend_when_answered_fill_whole_batches(monkeypatch, refill):
    """Eight clients in a loop (a client pool, batch transform's concurrent requests):
    without the refill wait the batches settle into alternating sizes (1 and 7, a mean
    of 4); with it, nearly every batch holds all eight."""
    from sagemaker_platform import batching

    if not refill:
        monkeypatch.setattr(batching, "REFILL_MAX_S", 0.0)
    model = Doubler(delay=0.03)
    engine = BatchEngine(lambda: model, max_batch_size=64)
    engine.wait_ready(5)

    def client():
        for _ in range(12):
            engine.predict(["a"], timeout=10)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    steady = model.batch_sizes[1:-1]  # the first holds whoever came first; the last, the rest
    mean = sum(steady) / len(steady)
    if refill:
        assert mean >= 6, model.batch_sizes
    else:
        assert mean < 5, model.batch_sizes  # the behaviour the wait exists to fix


def test_ping_stays_503_until_warm_up_has_finished(tmp_path):
    """The service is healthy only once the plug-in's warm_up returned: a ready flag set
    before warm-up would send traffic to a worker still paying its first passes."""
    from sagemaker_platform.config import ServeConfig
    from sagemaker_platform.plugin import Plugin
    from sagemaker_platform.service import Service

    warming, gate = threading.Event(), threading.Event()

    class SlowWarmUp(Plugin):
        name = "slow_warm_up"

        def load(self, model_dir, runtime):
            return Doubler()

        def warm_up(self, model):
            warming.set()
            gate.wait(10)

        def predict(self, model, records):
            return model.predict(records)

    service = Service(ServeConfig(workers=1, threads=1), tmp_path, plugin=SlowWarmUp())
    assert warming.wait(10), "warm_up never started"
    time.sleep(0.1)
    assert not service.healthy()
    with pytest.raises(NotReady):
        service.engine.predict(["x"], timeout=0.05)
    gate.set()
    assert service.engine.wait_ready(10) and service.healthy()
