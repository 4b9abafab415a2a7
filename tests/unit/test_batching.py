import threading
import time

import pytest
import torch
from text_classifier.batching import BatchEngine, NotReady


class Doubler:
    """A stand-in model: row i of the answer is [text length, batch size]."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.batch_sizes = []

    def warm_up(self):
        pass

    def predict_proba(self, texts):
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
    with pytest.raises(NotReady):
        engine.predict(["x"])
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
        def predict_proba(self, texts):
            if "boom" in texts:
                raise ValueError("boom")
            return super().predict_proba(texts)

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
