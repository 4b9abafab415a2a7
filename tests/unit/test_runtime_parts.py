"""`Runtime.in_parts`: a worker computing alone on several CPU threads splits a large
batch over threads of one torch thread each; anywhere else, one call as before."""

import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_platform.cores import CoreShare
from sagemaker_platform.runtime import MIN_PART, Runtime, _even_ends
from tests import helpers


@pytest.fixture
def torch_threads():
    """Set torch's thread count for the test; the suite's count again afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def recorder(together: int = 1):
    """fn(records) -> records, noting each call's thread, its torch thread count and
    its records; with `together`, each call waits until that many run at once."""
    calls = []
    lock = threading.Lock()
    barrier = threading.Barrier(together, timeout=10)

    def fn(records):
        with lock:
            calls.append((threading.get_ident(), torch.get_num_threads(), list(records)))
        barrier.wait()  # BrokenBarrierError unless the parts run at the same time
        return list(records)

    return fn, calls


def test_a_worker_alone_on_two_threads_splits_a_large_batch_in_order(torch_threads):
    torch_threads(2)
    fn, calls = recorder(together=2)
    records = list(range(2 * MIN_PART + 1))
    runtime = Runtime()
    assert runtime.in_parts(fn, records) == [records[: MIN_PART + 1], records[MIN_PART + 1 :]]
    assert sorted(len(r) for _, _, r in calls) == [MIN_PART, MIN_PART + 1]
    assert len({thread for thread, _, _ in calls}) == 2  # two threads at once
    assert {threads for _, threads, _ in calls} == {1}  # each on one torch thread
    assert threading.get_ident() in {thread for thread, _, _ in calls}  # one is the caller's
    assert torch.get_num_threads() == 2  # the caller's count is back
    threads = {thread for thread, _, _ in calls}
    calls.clear()
    assert runtime.in_parts(fn, records) == [records[: MIN_PART + 1], records[MIN_PART + 1 :]]
    assert {thread for thread, _, _ in calls} == threads  # the part thread is kept
    assert {threads for _, threads, _ in calls} == {1}  # still on one torch thread


def test_a_second_caller_while_parts_compute_runs_its_batch_in_one_call(torch_threads):
    """The part threads serve one caller at a time: another that comes while they
    compute runs its whole batch on its own thread rather than wait or mix its parts
    into the first caller's."""
    torch_threads(2)
    records = list(range(2 * MIN_PART))
    second: list = []
    caller = threading.Thread(
        target=lambda: second.append(
            Runtime().in_parts(lambda chunk: [threading.get_ident(), *chunk], records)
        )
    )

    def first(chunk):
        if chunk[0] == 0:  # the caller's own part: the part threads are held by now
            caller.start()
            caller.join(10)
        return list(chunk)

    assert Runtime().in_parts(first, records) == [records[:MIN_PART], records[MIN_PART:]]
    assert second == [[[caller.ident, *records]]]  # one call, on its own thread
    parts = Runtime().in_parts(lambda chunk: list(chunk), records)  # the threads are free again
    assert parts == [records[:MIN_PART], records[MIN_PART:]]


def test_a_forked_child_starts_part_threads_of_its_own():
    """gunicorn forks its workers: a child has none of its parent's threads, so parts
    handed to the parent's part thread would never come back."""
    code = """
import os, sys, threading
sys.path.insert(0, sys.argv[1])
import torch
from sagemaker_platform.runtime import MIN_PART, Runtime
torch.set_num_threads(2)
where = lambda chunk: threading.get_native_id()
parent = Runtime().in_parts(where, list(range(2 * MIN_PART)))
pid = os.fork()
if pid == 0:
    child = Runtime().in_parts(where, list(range(2 * MIN_PART)))
    print(len(child), child[1] != parent[1], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""
    done = helpers.run_code(code, timeout=60)
    assert done.stdout.split() == ["2", "True"], done.stdout + done.stderr[-3000:]


def test_three_threads_make_three_parts_where_each_gets_enough(torch_threads):
    torch_threads(3)
    fn, calls = recorder(together=3)
    assert [len(p) for p in Runtime().in_parts(fn, list(range(3 * MIN_PART)))] == [MIN_PART] * 3
    assert len({thread for thread, _, _ in calls}) == 3
    n = 3 * MIN_PART - 1  # a record short of three parts: two, as even as they go
    fn, _ = recorder(together=2)
    assert [len(p) for p in Runtime().in_parts(fn, list(range(n)))] == [n - n // 2, n // 2]


def test_with_a_cost_the_parts_hold_near_equal_work_not_counts(torch_threads):
    """A text's cost is its tokens: by count, 4 long texts then 16 short ones would
    split 10 | 10, 46 units of work against 10. By cost, the ends nearest each share
    of the work, whatever the counts."""
    torch_threads(2)
    fn, calls = recorder(together=2)
    costs = [10] * 4 + [1] * 16
    records = list(range(len(costs)))
    parts = Runtime().in_parts(fn, records, cost=costs.__getitem__)
    assert parts == [records[:3], records[3:]]  # 30 | 26 units
    assert {threads for _, threads, _ in calls} == {1}
    torch_threads(3)
    costs = [1] * 12 + [12] * 2 + [1] * 12  # the two long ones get a part of their own
    fn, _ = recorder(together=3)
    parts = Runtime().in_parts(fn, list(range(26)), cost=costs.__getitem__)
    assert [len(p) for p in parts] == [12, 2, 12]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=2, max_size=64), st.integers(2, 8))
def test_even_ends_make_nonempty_parts_near_their_share(costs, parts):
    parts = min(parts, len(costs))
    ends = _even_ends(costs, parts)
    assert len(ends) == parts and ends[-1] == len(costs)
    starts = [0, *ends[:-1]]
    assert all(a < b for a, b in zip(starts, ends, strict=True))  # none empty, in order
    for a, b in zip(starts, ends, strict=True):  # none more than one record past its share
        assert sum(costs[a:b]) <= sum(costs) / parts + max(costs)


def one_call(runtime: Runtime, records: list) -> list:
    fn, calls = recorder()
    assert runtime.in_parts(fn, records) == [records]
    return calls


def test_one_call_where_the_worker_does_not_compute_alone_on_a_cpu(torch_threads):
    torch_threads(2)
    records = list(range(4 * MIN_PART))
    share = CoreShare(cores=2, slots=2)
    for runtime in (
        Runtime(share=share),  # workers sharing the cores: each follows its share
        Runtime(device="cuda"),
        Runtime(split_batches=False),
    ):
        (call,) = one_call(runtime, records)
        assert call[0] == threading.get_ident() and call[1] == 2
    (call,) = one_call(Runtime(), records[: 2 * MIN_PART - 1])  # too small to split
    assert call == (threading.get_ident(), 2, records[: 2 * MIN_PART - 1])
    torch_threads(1)
    assert len(one_call(Runtime(), records)) == 1


def test_a_part_that_fails_fails_the_batch_and_leaves_nothing_running(torch_threads):
    torch_threads(2)
    finished = []

    def fn(records):
        if records[0] == 0:
            raise ValueError("bad record 0")
        threading.Event().wait(0.2)  # the other part still computes when the first fails
        finished.append(records)
        return records

    with pytest.raises(ValueError, match="bad record 0"):
        Runtime().in_parts(fn, list(range(2 * MIN_PART)))
    assert finished == [list(range(MIN_PART, 2 * MIN_PART))]  # waited for, not abandoned
    assert torch.get_num_threads() == 2

    def late(records):
        if records[0] != 0:
            raise ValueError(f"bad record {records[0]}")
        return records

    with pytest.raises(ValueError, match=f"bad record {MIN_PART}"):
        Runtime().in_parts(late, list(range(2 * MIN_PART)))
    assert torch.get_num_threads() == 2


def test_parts_run_on_os_threads_at_once_in_a_gevent_worker():
    """Under gunicorn's gevent worker `threading` is monkey-patched: its threads are
    greenlets, which would take turns on the forward pass's thread. The parts must run
    on OS threads of their own, at the same time, from the batcher's native thread."""
    code = """
from gevent import monkey; monkey.patch_all()
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
from gevent.threadpool import ThreadPool
from sagemaker_platform.runtime import MIN_PART, Runtime, _even_ends
native_id = monkey.get_original("threading", "get_native_id")
torch.set_num_threads(2)
def fn(records):
    start = time.perf_counter()
    while time.perf_counter() - start < 0.3:  # holds the GIL between its switches
        pass
    return (native_id(), start, time.perf_counter(), torch.get_num_threads())
runtime = Runtime()
forward = ThreadPool(1)  # as batching runs every forward pass
(a, b) = forward.spawn(runtime.in_parts, fn, list(range(2 * MIN_PART))).get(timeout=30)
print(a[0] != b[0], a[1] < b[2] and b[1] < a[2], a[3], b[3], torch.get_num_threads())
"""
    done = helpers.run_code(code, timeout=120)
    # Two OS threads, whose computations overlapped in time, each on one torch thread.
    assert done.stdout.split() == ["True", "True", "1", "1", "2"], done.stdout + done.stderr[-3000:]
