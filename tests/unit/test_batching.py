import logging
import re
import threading
import time

import numpy as np
import pytest
import torch

from sagemaker_platform import batching
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
        self.entered = threading.Event()

    def predict(self, texts):
        if any("stuck" in t for t in texts):
            self.entered.set()
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
    assert str(outcomes["stuck"][0]) == "the forward pass ran longer than 0.5 s"
    assert 0.4 < outcomes["stuck"][1] < 3
    assert isinstance(outcomes["queued"][0], NotReady)
    assert str(outcomes["queued"][0]) == "this worker is being replaced"
    assert len(calls) == 1
    exc, seen_when_called = calls[0]
    assert isinstance(exc, Stuck)
    assert set(seen_when_called) == {"stuck", "queued"}, "on_stuck ran before the answers"
    assert not engine.ready
    with pytest.raises(NotReady, match="being replaced"):
        engine.predict(["later"], timeout=5)


def test_a_stuck_batch_logs_where_it_is_stuck(caplog):
    """The one line a stuck forward pass leaves says where it hangs, innermost frame
    first: here the model's `predict`, waiting on its event."""
    model = Gated()
    engine = BatchEngine(
        lambda: model, stuck_after_s=0.3, on_stuck=lambda exc: None, flush_grace_s=0.0
    )
    assert engine.wait_ready(5)
    try:
        with caplog.at_level(logging.ERROR, logger="serve"), pytest.raises(Stuck):
            engine.predict(["stuck"], timeout=10)
    finally:
        model.release.set()
    lines = [r.getMessage() for r in caplog.records if "forward pass stuck" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0]
    assert re.search(
        r" at=threading\.py:\d+ wait < .* < test_batching\.py:\d+ predict < ", lines[0]
    )


def test_where_names_the_load_in_progress_and_nothing_once_it_is_done():
    release = threading.Event()

    def slow_load():
        release.wait(10)
        return Doubler()

    engine = BatchEngine(slow_load)
    try:
        deadline = time.monotonic() + 5
        while "slow_load" not in engine.where() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert re.match(
            r"threading\.py:\d+ wait < .*test_batching\.py:\d+ slow_load", engine.where()
        )
    finally:
        release.set()
    assert engine.wait_ready(5)
    assert engine.where() == ""


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


# --- exact batching: a held forward pass, then a known queue ---------------------------
class Held:
    """Tags each record with its batch; a batch whose first record is "hold" waits for
    `gate`, so that the requests sent meanwhile queue up in a known order."""

    def __init__(self):
        self.batches = []
        self.entered = threading.Event()
        self.gate = threading.Event()

    def warm_up(self):
        pass

    def predict(self, records):
        self.batches.append(list(records))
        if records and records[0] == "hold":
            self.entered.set()
            self.gate.wait(10)
        return [f"{len(self.batches)}:{r}" for r in records]


def _queued(engine, n):
    """Wait (bounded) until `n` requests are on the engine's queue."""
    deadline = time.monotonic() + 5
    while engine._queue.qsize() != n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert engine._queue.qsize() == n


def _send_while_held(engine, model, requests, meanwhile=None, **kwargs):
    """Hold a forward pass, queue `requests` one after the other, call `meanwhile` (if
    given), release: the answer (or the exception) of each, in order."""
    results = [None] * len(requests)

    def client(i, records):
        try:
            results[i] = engine.predict(records, timeout=10, **kwargs)
        except Exception as exc:
            results[i] = exc

    hold = threading.Thread(
        target=engine.predict, args=(["hold"],), kwargs={"timeout": 10}, daemon=True
    )
    hold.start()
    assert model.entered.wait(5)
    threads = []
    for i, records in enumerate(requests):
        threads.append(threading.Thread(target=client, args=(i, records), daemon=True))
        threads[-1].start()
        _queued(engine, i + 1)
    if meanwhile:
        meanwhile()
    model.gate.set()
    for t in [hold, *threads]:
        t.join(10)
    return results


def test_outputs_are_split_back_to_each_request_in_its_order():
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=64)
    assert engine.wait_ready(5)
    results = _send_while_held(engine, model, [["a"], ["b", "c", "d"], ["e", "f"], ["g"]])
    assert model.batches == [["hold"], ["a", "b", "c", "d", "e", "f", "g"]]
    assert results == [["2:a"], ["2:b", "2:c", "2:d"], ["2:e", "2:f"], ["2:g"]]
    assert (engine.batches, engine.records) == (2, 8)


def test_a_batch_takes_up_to_max_batch_size_records_in_queue_order():
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=4)
    assert engine.wait_ready(5)
    requests = [["a"], ["b"], ["c"], ["d"], ["e", "f", "g"], ["h", "i"], ["j"]]
    results = _send_while_held(engine, model, requests)
    # a request is never split: the one that reaches (or passes) the limit ends the batch
    assert model.batches == [["hold"], ["a", "b", "c", "d"], ["e", "f", "g", "h", "i"], ["j"]]
    assert results == [
        ["2:a"],
        ["2:b"],
        ["2:c"],
        ["2:d"],
        ["3:e", "3:f", "3:g"],
        ["3:h", "3:i"],
        ["4:j"],
    ]


def test_a_request_over_max_batch_size_runs_alone():
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=2)
    assert engine.wait_ready(5)
    results = _send_while_held(engine, model, [["a", "b", "c"], ["d"], ["e"]])
    assert model.batches == [["hold"], ["a", "b", "c"], ["d", "e"]]
    assert results == [["2:a", "2:b", "2:c"], ["3:d"], ["3:e"]]


@pytest.mark.parametrize("change", [-1, +1])
def test_a_wrong_number_of_outputs_fails_the_whole_batch_never_misaligns(change):
    class Miscounts(Held):
        def predict(self, records):
            outputs = super().predict(records)
            if "bad" in records:
                return outputs[:-1] if change < 0 else [*outputs, "extra"]
            return outputs

    model = Miscounts()
    engine = BatchEngine(lambda: model, max_batch_size=64)
    assert engine.wait_ready(5)
    results = _send_while_held(engine, model, [["a"], ["bad", "b"]])
    n = 3 + change
    for result in results:
        assert isinstance(result, RuntimeError)
        assert str(result) == f"predict returned {n} outputs for 3 records"
    assert results[0] is results[1]
    assert engine.predict(["ok"], timeout=5) == ["3:ok"]  # the engine goes on


def test_an_error_reaches_every_request_of_its_batch():
    class Fails(Held):
        def predict(self, records):
            outputs = super().predict(records)
            if "boom" in records:
                raise ValueError("boom")
            return outputs

    model = Fails()
    engine = BatchEngine(lambda: model, max_batch_size=64)
    assert engine.wait_ready(5)
    results = _send_while_held(engine, model, [["a"], ["boom"], ["c"]])
    assert model.batches == [["hold"], ["a", "boom", "c"]]
    assert all(isinstance(r, ValueError) and str(r) == "boom" for r in results)
    assert engine.predict(["ok"], timeout=5) == ["3:ok"]


def test_with_a_max_delay_a_batch_waits_for_a_later_request():
    model = Held()
    # a delay far beyond the test: the batch is sent when full, not when the delay ends
    engine = BatchEngine(lambda: model, max_batch_size=2, max_delay_s=30)
    assert engine.wait_ready(5)
    results = {}
    hold = threading.Thread(
        target=engine.predict, args=(["hold", "x"],), kwargs={"timeout": 20}, daemon=True
    )
    hold.start()
    assert model.entered.wait(5)
    first = threading.Thread(
        target=lambda: results.update(a=engine.predict(["a"], timeout=20)), daemon=True
    )
    first.start()
    _queued(engine, 1)
    model.gate.set()
    _queued(engine, 0)  # the batcher took it, and waits for more
    results["b"] = engine.predict(["b"], timeout=20)
    first.join(10)
    hold.join(10)
    assert model.batches == [["hold", "x"], ["a", "b"]]
    assert results == {"a": ["2:a"], "b": ["2:b"]}


def test_a_model_closed_while_its_batch_is_stuck_still_hands_over_to_on_stuck():
    """`close` (a multi-model unload) while a forward pass hangs puts its end-marker on
    the queue; giving up the stuck batch must pass over it, not die on it, or the worker
    with a lost thread is never replaced."""
    model, calls = Gated(), []
    handed_over = threading.Event()

    from sagemaker_platform.batching import _Request

    late = _Request(["late"])  # slipped in behind the marker (the race `close` leaves)
    late.collected.set()

    def on_stuck(exc):
        calls.append((exc, late.error))
        handed_over.set()

    engine = BatchEngine(
        lambda: model, stuck_after_s=0.5, on_stuck=on_stuck, flush_grace_s=0.0, name="m"
    )
    assert engine.wait_ready(5)
    outcome = []

    def client():
        try:
            engine.predict(["stuck"], timeout=10)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert model.entered.wait(5)  # the batch is computing: the marker queues behind it
    engine.close("model 'm' was unloaded")
    engine._queue.put(late)
    try:
        assert handed_over.wait(10), "on_stuck was never called"
        thread.join(10)
        assert isinstance(outcome[0], Stuck) and calls[0][0] is outcome[0]
        assert isinstance(calls[0][1], NotReady), "answered only after on_stuck"
        with pytest.raises(NotReady):
            engine.predict(["later"], timeout=1)
        deadline = time.monotonic() + 5
        while engine.model is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.model is None  # closed: let go
    finally:
        model.release.set()


def test_close_answers_the_batch_it_ends_in_then_lets_the_model_go():
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=64, name="m")
    assert engine.wait_ready(5)

    def close():
        engine.close("model 'm' was unloaded")
        with pytest.raises(NotReady, match="^model 'm' was unloaded$"):
            engine.predict(["late"], timeout=1)

    results = _send_while_held(engine, model, [["a"], ["b"]], meanwhile=close)
    assert model.batches == [["hold"], ["a", "b"]]  # the marker ended the batch it was in
    assert results == [["2:a"], ["2:b"]]
    deadline = time.monotonic() + 5
    while engine.model is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.model is None and not engine.ready


def test_a_warm_up_failure_is_a_load_failure():
    class ColdModel(Held):
        def warm_up(self):
            raise ValueError("no warm-up")

    engine = BatchEngine(ColdModel)  # no on_load_error: only the engine's state says
    assert engine.wait_settled(5) and not engine.ready
    assert isinstance(engine.error, ValueError) and str(engine.error) == "no warm-up"
    assert engine.model is None
    with pytest.raises(NotReady, match="^model failed to load$"):
        engine.predict(["x"], timeout=5)
    with pytest.raises(NotReady, match="^model failed to load$"):
        engine.loaded(timeout=5)


def test_while_loading_loaded_and_wait_settled_give_up_within_their_timeout():
    gate = threading.Event()
    engine = BatchEngine(lambda: (gate.wait(10), Held())[1])
    try:
        assert engine.wait_settled(0.05) is False
        with pytest.raises(NotReady, match="^model is loading$"):
            engine.loaded(timeout=0.05)
    finally:
        gate.set()
    assert engine.wait_settled(5)
    assert isinstance(engine.loaded(timeout=5), Held)


def test_a_model_closed_while_loading_is_never_ready_even_for_a_moment():
    gate = threading.Event()
    engine = BatchEngine(lambda: (gate.wait(10), Held())[1])
    became_ready = []
    waiter = threading.Thread(target=lambda: became_ready.append(engine.wait_ready(1)))
    waiter.start()
    engine.close()
    gate.set()
    waiter.join(5)
    assert became_ready == [False]
    assert engine.wait_settled(5) and not engine.ready


def test_a_request_that_slipped_in_behind_close_gets_not_ready():
    """The race `close` leaves (a request that passed the ready check as it closed):
    queued behind the end-marker, it is answered NotReady, never left to time out."""
    from sagemaker_platform.batching import _Request

    model = Held()
    engine = BatchEngine(lambda: model, name="m")
    assert engine.wait_ready(5)
    hold = threading.Thread(target=engine.predict, args=(["hold"],), daemon=True)
    hold.start()
    assert model.entered.wait(5)
    engine.close("model 'm' was unloaded")
    late = _Request(["late"])
    engine._queue.put(late)
    model.gate.set()
    assert late.done.wait(5)
    assert isinstance(late.error, NotReady) and str(late.error) == "model 'm' was unloaded"
    assert model.batches == [["hold"]]


def test_without_a_max_delay_a_batch_waits_for_the_clients_the_last_one_answered(
    monkeypatch,
):
    """The refill wait, made long enough to be certain: after a batch of one, with two
    queued, the batch waits for one more (the client just answered, resending), and a
    batch holding as many as expected is sent at once."""
    from sagemaker_platform import batching

    monkeypatch.setattr(batching, "REFILL_GAP_S", 30.0)
    monkeypatch.setattr(batching, "REFILL_MAX_S", 30.0)
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=64)
    assert engine.wait_ready(5)
    results = {}

    def client(name):
        results[name] = engine.predict([name], timeout=20)

    hold = threading.Thread(target=engine.predict, args=(["hold"],), daemon=True)
    hold.start()
    assert model.entered.wait(5)
    threads = []
    for i, name in enumerate("ab"):
        threads.append(threading.Thread(target=client, args=(name,), daemon=True))
        threads[-1].start()
        _queued(engine, i + 1)
    model.gate.set()
    _queued(engine, 0)  # both taken: 2 queued + 1 answered, so it waits for a third
    threads.append(threading.Thread(target=client, args=("c",), daemon=True))
    threads[-1].start()
    for t in [hold, *threads]:
        t.join(10)
    assert model.batches == [["hold"], ["a", "b", "c"]]
    assert results == {"a": ["2:a"], "b": ["2:b"], "c": ["2:c"]}


def test_on_stuck_waits_until_every_answer_is_taken():
    """`on_stuck` exits the worker: called before a waiting request took its NotReady,
    that client would get a dropped connection instead of its 503."""
    from sagemaker_platform.batching import _Request

    model, handed_over = Gated(), threading.Event()
    engine = BatchEngine(
        lambda: model,
        max_batch_size=1,
        stuck_after_s=0.3,
        on_stuck=lambda exc: handed_over.set(),
        flush_grace_s=0.0,
    )
    assert engine.wait_ready(5)
    stuck = threading.Thread(target=pytest.raises, args=(Stuck, engine.predict, ["stuck"]))
    stuck.daemon = True
    stuck.start()
    assert model.entered.wait(5)
    slow_reader = _Request(["behind"])  # a client that has not yet run to take its answer
    engine._queue.put(slow_reader)
    try:
        assert slow_reader.done.wait(5)
        assert isinstance(slow_reader.error, NotReady)
        assert not handed_over.wait(0.5), "on_stuck ran before the answer was taken"
        slow_reader.collected.set()
        assert handed_over.wait(5)
    finally:
        model.release.set()


# --- a request of many records: calls of at most PASSES_PER_CALL passes -----------------
def test_a_long_request_is_computed_in_calls_and_answered_in_order(monkeypatch):
    monkeypatch.setattr(batching, "PASSES_PER_CALL", 2)
    model = Held()
    engine = BatchEngine(lambda: model, max_batch_size=2)
    assert engine.wait_ready(5)
    results = _send_while_held(engine, model, [list("abcdefghij"), ["k"]])
    # calls of 2 passes x 2 records; the next request waits for the whole long one
    assert model.batches == [["hold"], list("abcd"), list("efgh"), list("ij"), ["k"]]
    assert results[0] == ["2:a", "2:b", "2:c", "2:d", "3:e", "3:f", "3:g", "3:h", "4:i", "4:j"]
    assert results[1] == ["5:k"] and (engine.batches, engine.records) == (3, 12)


def test_tensor_and_array_outputs_of_several_calls_are_joined(monkeypatch):
    monkeypatch.setattr(batching, "PASSES_PER_CALL", 1)
    engine = BatchEngine(lambda: Doubler(), max_batch_size=2)
    assert engine.wait_ready(5)
    rows = engine.predict(["a", "bb", "ccc"], timeout=5)
    assert rows.tolist() == [[1.0, 2.0], [2.0, 2.0], [3.0, 1.0]]  # [length, call's size]
    joined = batching._join([np.zeros((2, 3)), np.ones((1, 3))])
    assert isinstance(joined, np.ndarray) and joined.shape == (3, 3)


def test_a_request_longer_than_the_stuck_limit_in_short_calls_is_answered(monkeypatch):
    monkeypatch.setattr(batching, "PASSES_PER_CALL", 1)
    calls = []
    model = Doubler(delay=0.3)
    engine = BatchEngine(lambda: model, max_batch_size=1, stuck_after_s=1.0, on_stuck=calls.append)
    assert engine.wait_ready(5)
    rows = engine.predict(["a", "b", "c", "d", "e"], timeout=10)  # 1.5 s in all
    assert rows[:, 0].tolist() == [1.0] * 5 and model.batch_sizes == [1] * 5
    assert calls == [] and engine.ready


def test_a_request_whose_caller_stopped_waiting_stops_computing(monkeypatch):
    monkeypatch.setattr(batching, "PASSES_PER_CALL", 1)
    model = Doubler(delay=0.1)
    engine = BatchEngine(lambda: model, max_batch_size=1)
    assert engine.wait_ready(5)
    with pytest.raises(TimeoutError):
        engine.predict(["x"] * 50, timeout=0.25)
    assert engine.predict(["next"], timeout=5).tolist() == [[4.0, 1.0]]
    assert len(model.batch_sizes) < 10  # not the 50 calls the whole request would take
