"""Cores shared between workers: the shared bytes, across a real fork, and gunicorn's hooks."""

import copy
import importlib
import os
from types import SimpleNamespace

import pytest

from sagemaker_platform.cores import CoreShare


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_worker_alone_takes_every_core_and_busy_workers_split_them():
    clock = Clock()
    share = CoreShare(cores=8, slots=4, clock=clock)
    share.attach(0)
    assert share.threads() == 8  # nobody computes: a batch starting now would be alone
    with share.computing():
        assert share.busy() == 1 and share.threads() == 8
        other = copy.copy(share)  # a second worker's view of the same bytes
        other.slot = 1
        with other.computing():
            assert share.busy() == 2 and share.threads() == 4
        assert share.busy() == 1
        assert share.threads() == 4  # it saw another computing a moment ago: held
        clock.now += 2 * share.hold_s
        assert share.threads() == 8  # none seen for longer than hold_s: every core again
    assert share.busy() == 0


def test_a_worker_keeps_its_share_through_the_gaps_of_a_steady_load():
    """Two workers under load: one's short gap between batches does not hand the other
    every core for its next batch; a gap as long as the hold does."""
    clock = Clock()
    share = CoreShare(cores=2, slots=2, clock=clock)
    share.attach(0)
    other = copy.copy(share)
    other.slot = 1
    for _ in range(3):  # batches overlapping, with gaps shorter than the hold between
        with other.computing(), share.computing():
            assert share.threads() == 1
        clock.now += share.hold_s * 0.9
        with share.computing():
            assert share.threads() == 1  # the other is answering, not gone
    clock.now += 2 * share.hold_s
    with share.computing():
        assert share.threads() == 2
    three = CoreShare(cores=6, slots=3, clock=clock)  # the share held is the last seen
    three.attach(0)
    with three.computing():
        three._busy[1] = three._busy[2] = 1
        assert three.threads() == 2
        three._busy[2] = 0
        assert three.threads() == 3  # fewer busy now: the count now
        three._busy[1] = 0
        assert three.threads() == 3  # none but itself, within the hold: the last seen
    unheld = CoreShare(cores=2, slots=2, hold_s=0, clock=clock)
    unheld.attach(0)
    with unheld.computing():
        unheld._busy[1] = 1
        assert unheld.threads() == 1
        unheld._busy[1] = 0
        assert unheld.threads() == 2


def test_the_bytes_are_shared_with_a_forked_worker():
    share = CoreShare(cores=2, hold_s=0)
    share.attach(0)
    started, finish = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a second worker computing until told to stop
        share.attach(1)
        with share.computing():
            os.write(started[1], b"x")
            os.read(finish[0], 1)
        os._exit(0)
    try:
        assert os.read(started[0], 1) == b"x"
        assert share.busy() == 1
        with share.computing():
            assert share.threads() == 1  # two busy workers, two cores
    finally:
        os.write(finish[1], b"x")
        os.waitpid(pid, 0)
    assert share.busy() == 0 and share.threads() == 2


def test_a_computing_worker_that_died_is_released():
    share = CoreShare(cores=4, slots=4, hold_s=0)
    share.attach(2)
    with pytest.raises(RuntimeError), share.computing():
        raise RuntimeError("the batch failed")
    assert share.busy() == 0  # the flag drops with the exception
    share._busy[3] = 1  # a worker killed mid-batch leaves its byte set
    with share.computing():
        assert share.threads() == 2
    share.release(3)
    with share.computing():
        assert share.threads() == 4
    with pytest.raises(ValueError, match="slot 4 outside"):
        share.attach(4)


def test_gunicorn_hooks_give_slots_and_free_the_slot_of_an_exited_worker(monkeypatch, root_logging):
    """pre_fork (master) picks the lowest free slot, post_fork (worker) attaches it, and
    child_exit (master) releases the slot of a worker that died computing."""
    from sagemaker_platform import cores, gunicorn_conf

    monkeypatch.setenv(gunicorn_conf.SHARED_CORES_ENV, "4")
    conf = importlib.reload(gunicorn_conf)
    try:  # post_fork sets up a worker's logging: `root_logging` puts it back
        server = SimpleNamespace(WORKERS={})
        workers = []
        for pid in (101, 102, 103):
            w = SimpleNamespace(pid=pid)
            conf.pre_fork(server, w)
            server.WORKERS[pid] = w
            workers.append(w)
        assert [w.slot for w in workers] == [0, 1, 2]
        conf.post_fork(server, workers[1])
        share = cores.installed()
        assert share is conf._share and share.slot == 1 and share.cores == 4
        share._busy[1] = 1  # worker 102 is killed mid-batch
        del server.WORKERS[102]
        conf.child_exit(server, workers[1])
        assert share.busy() == 0
        replacement = SimpleNamespace(pid=104)
        conf.pre_fork(server, replacement)
        assert replacement.slot == 1  # the lowest free slot again
    finally:
        cores.install(None)
        monkeypatch.delenv(gunicorn_conf.SHARED_CORES_ENV)
        importlib.reload(gunicorn_conf)
