"""`inflight.InFlight`: a worker holds at most its budget of request bodies at once; one
request always fits."""

from __future__ import annotations

import pytest

from sagemaker_platform import inflight
from sagemaker_platform.codecs import HTTPError

MB = 2**20


def test_requests_are_held_within_the_budget_and_let_go_after():
    held = inflight.InFlight(10 * MB)
    with held.admitted(6 * MB, 6 * MB):
        with held.admitted(4 * MB, 6 * MB):
            assert held.held == 10 * MB
            with pytest.raises(HTTPError) as err, held.admitted(1, 6 * MB):
                pass
        assert held.held == 6 * MB
    assert held.held == 0
    assert err.value.status == 429
    assert err.value.message == (
        "this worker holds 10.0 MB of requests, and this one's 0.0 MB would pass its budget "
        "of 10.0 MB (MODEL_SERVER_MAX_INFLIGHT_MB); retry shortly"
    )


def test_a_worker_holding_nothing_takes_a_request_over_its_budget():
    held = inflight.InFlight(1 * MB)
    with held.admitted(900 * MB, 1024 * MB):
        assert held.held == 900 * MB
    assert held.held == 0


def test_a_body_of_unknown_length_counts_as_the_payload_limit():
    held = inflight.InFlight(10 * MB)
    with held.admitted(None, 6 * MB), pytest.raises(HTTPError), held.admitted(None, 6 * MB):
        pass
    with held.admitted(100 * MB, 6 * MB):  # over the limit: refused as a 413 when read
        assert held.held == 6 * MB


def test_a_failed_request_lets_its_bytes_go():
    held = inflight.InFlight(10 * MB)
    with pytest.raises(RuntimeError), held.admitted(5 * MB, 6 * MB):
        raise RuntimeError("the model failed")
    assert held.held == 0


def test_the_default_budget_is_half_the_memory_over_workers_and_the_expansion():
    assert inflight.default_budget_mb(2, memory_mb=16384) == pytest.approx(819.2)
    assert inflight.default_budget_mb(0, memory_mb=1000) == pytest.approx(100.0)
