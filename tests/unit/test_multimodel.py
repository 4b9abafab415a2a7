"""A multi-model endpoint's rules and shared list (`multimodel`), without a server: names,
urls, pages, the memory budget, and the list that several processes change at once. The
real routes on the real stack are tests/integration/test_mme.py."""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time

import pytest

from sagemaker_platform import memory, multimodel
from sagemaker_platform.batching import BatchEngine, NotReady
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.multimodel import LOADED, LOADING, Store
from tests import helpers


def status(fn, *args) -> tuple[int, str]:
    with pytest.raises(HTTPError) as exc:
        fn(*args)
    return exc.value.status, exc.value.message


# --- names, urls, pages -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "customer-42", "f8c3b1.tar.gz", "A_b-C.1", "x" * 255])
def test_names_sagemaker_sends_are_taken(name):
    assert multimodel.check_name(name) == name and multimodel.is_name(name)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "../x", "a/b", "-a", ".hidden", "a b", "a\nval_f1=1", "é", "x" * 256, 7, None],
)
def test_hostile_names_are_a_400_that_stays_short(name):
    code, message = status(multimodel.check_name, name)
    assert code == 400 and len(message) < 300
    assert not (isinstance(name, str) and multimodel.is_name(name))


def test_a_10kb_name_is_cut_short_in_the_message():
    code, message = status(multimodel.check_name, "y" * 10_000)
    assert code == 400 and "yyy..." in message and len(message) < 300


@pytest.fixture
def root(tmp_path):
    models = tmp_path / "models"
    (models / "a" / "model").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return models


def test_a_folder_under_the_models_root_is_taken_resolved(root):
    assert multimodel.check_url(str(root / "a" / "model"), root) == (root / "a" / "model").resolve()
    link = root / "b"
    link.symlink_to(root / "a")  # a link that stays inside the root is followed
    assert multimodel.check_url(str(link / "model"), root) == (root / "a" / "model").resolve()


def test_urls_outside_the_root_are_refused(root, tmp_path):
    (root / "evil").mkdir()
    (root / "evil" / "model").symlink_to(tmp_path / "outside")
    (root / "loop").symlink_to(root / "loop")
    (root / "a" / "file").write_text("x")
    cases = {
        str(tmp_path / "outside"): 400,  # absolute, elsewhere
        "/etc": 400,
        str(root / ".." / "outside"): 400,  # ../
        str(root / "a" / ".." / ".." / "outside"): 400,
        str(root / "evil" / "model"): 400,  # a link out
        str(root): 400,  # the root itself is no model
        "models/a/model": 400,  # relative
        str(root / "a" / "model") + "\x00": 400,
        "/" + "x" * 5000: 400,
        str(root / "a" / "file"): 400,  # not a folder
        str(root / "nope" / "model"): 404,  # under the root, not there (yet)
        str(root / "loop" / "model"): 404,
    }
    for url, expected in cases.items():
        assert status(multimodel.check_url, url, root)[0] == expected, url[:80]
    for bad in (None, 3, ["/x"], ""):
        assert status(multimodel.check_url, bad, root)[0] == 400


def test_pages_walk_every_name_once_whatever_the_size():
    names = [f"m{i:03d}" for i in range(23)]
    for size in (1, 5, 23, 100):
        seen, after = [], None
        for _ in range(30):
            chunk, token = multimodel.page(names, after, size)
            seen += chunk
            if token is None:
                break
            after, got = multimodel.read_page_args({"next_page_token": token, "max_results": "1"})
            assert got == 1
        assert seen == sorted(names)


def test_a_token_survives_models_unloaded_between_pages():
    chunk, token = multimodel.page(["a", "b", "c", "d"], None, 2)
    after, _ = multimodel.read_page_args({"next_page_token": token})
    assert chunk == ["a", "b"] and multimodel.page(["a", "c", "d"], after, 2) == (["c", "d"], None)


@pytest.mark.parametrize(
    "args",
    [
        {"max_results": "0"},
        {"max_results": "1001"},
        {"max_results": "-1"},
        {"max_results": "1.5"},
        {"max_results": "x"},
        {"max_results": "²"},
        {"max_results": "9" * 50},
        {"next_page_token": "!!"},
        {"next_page_token": "Li4"},  # base64 of "..": not a name
        {"next_page_token": "A" * 5000},
    ],
)
def test_bad_page_arguments_are_a_400(args):
    assert status(multimodel.read_page_args, args)[0] == 400


def test_page_arguments_default_to_the_first_page_of_100():
    assert multimodel.read_page_args({}) == (None, 100)
    assert multimodel.read_page_args({"next_page_token": "", "max_results": "1000"}) == (None, 1000)


# --- memory -----------------------------------------------------------------------------
def test_the_estimate_follows_the_size_on_disk(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights").write_bytes(b"\0" * (10 * 2**20))
    (tmp_path / "small").write_bytes(b"\0" * 1024)
    (tmp_path / "folder-link").symlink_to(tmp_path / "sub")  # not followed: counted once
    expected = multimodel.OVERHEAD_MB + multimodel.DISK_FACTOR * (10 + 1 / 1024)
    assert multimodel.estimate_mb(tmp_path) == pytest.approx(expected, abs=0.1)


def test_a_directory_of_too_many_files_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(multimodel, "MAX_FILES", 5)
    for i in range(6):
        (tmp_path / str(i)).touch()
    assert status(multimodel.directory_bytes, tmp_path)[0] == 400


def test_the_default_budget_leaves_room_for_each_worker():
    assert multimodel.default_budget_mb(2, 8192) == int(0.85 * 8192 - 2 * 512)
    assert multimodel.default_budget_mb(4, 1024) == 0  # nothing left: every load is a 507
    assert memory.container_memory_mb() > 0


def test_the_container_memory_is_the_cgroup_limit_when_lower(tmp_path, monkeypatch):
    limit = tmp_path / "memory.max"
    limit.write_text(str(3 * 2**30) + "\n")
    monkeypatch.setattr(memory, "_CGROUP_LIMITS", (limit,))
    assert memory.container_memory_mb() == 3072
    limit.write_text("max\n")
    assert memory.container_memory_mb() > 0  # the machine's


# --- the shared list --------------------------------------------------------------------
@pytest.fixture
def store(tmp_path) -> Store:
    return Store.create(tmp_path / "store")


def reserve(store: Store, name: str, memory_mb: float = 10, budget_mb: float = 1000, workers=2):
    return store.reserve(name, f"/m/{name}", f"/m/{name}", "tabular", memory_mb, budget_mb, workers)


def test_a_load_is_listed_loading_then_loaded_and_seen_by_another_process(store, tmp_path):
    entry = reserve(store, "a")
    other = Store(store.folder)  # another worker's view
    generation, listed = other.entries()
    assert listed["a"].state == LOADING and listed["a"].pid == os.getpid()
    store.commit(entry)
    assert other.entries()[0] > generation and other.entries()[1]["a"].state == LOADED
    assert other.entries()[1]["a"].load_id == entry.load_id


def test_a_name_listed_is_a_409_loading_or_loaded(store):
    entry = reserve(store, "a")
    assert status(reserve, store, "a")[0] == 409
    store.commit(entry)
    assert status(reserve, store, "a") == (409, "model 'a' is already loaded")


def test_the_budget_counts_every_workers_copy(store):
    reserve(store, "a", memory_mb=100, budget_mb=400, workers=2)  # 200 of 400
    code, message = status(reserve, store, "b", 101, 400, 2)  # 202 more: over
    assert code == 507 and "MODEL_SERVER_MME_MEMORY_MB" in message and "2 worker(s)" in message
    reserve(store, "b", memory_mb=100, budget_mb=400, workers=2)  # exactly 400: fits
    store.remove("a")
    reserve(store, "c", memory_mb=100, budget_mb=400, workers=2)  # room again after a DELETE


def test_the_most_models_listed_is_a_507(store, monkeypatch):
    monkeypatch.setattr(multimodel, "MAX_MODELS", 2)
    reserve(store, "a")
    reserve(store, "b")
    assert status(reserve, store, "c")[0] == 507


def test_a_failed_load_leaves_nothing_and_release_spares_a_newer_load(store):
    first = reserve(store, "a")
    store.release(first)
    assert "a" not in store.entries()[1]
    first = reserve(store, "a")
    store.remove("a")
    second = reserve(store, "a")
    store.release(first)  # the old load's failure must not unlist the new one
    assert store.commit(first) is None  # nor list it
    assert store.entries()[1]["a"].load_id == second.load_id


def test_remove_unknown_is_a_404(store):
    assert status(store.remove, "nope")[0] == 404


def test_slots_are_reused_and_last_use_is_shared(store):
    a, b = reserve(store, "a"), reserve(store, "b")
    assert (a.slot, b.slot) == (0, 1)
    store.remove("a")
    assert reserve(store, "c").slot == 0
    before = time.time()
    Store(store.folder).touch(b.slot)
    assert store.last_used(b.slot) >= before


def _load_and_die(folder: str) -> None:
    Store(multimodel.Path(folder)).reserve("ghost", "/m", "/m", "tabular", 1, 100, 1)
    os._exit(0)  # killed mid-load: its entry says loading, by a pid that is gone


def test_a_load_whose_worker_died_is_dropped(store):
    proc = multiprocessing.get_context("fork").Process(
        target=_load_and_die, args=(str(store.folder),)
    )
    proc.start()
    proc.join(10)
    listed = store.entries()[1]["ghost"]
    assert listed.state == LOADING and not listed.live()
    entry = reserve(store, "ghost")  # not a 409: the dead load is pruned
    assert entry.pid == os.getpid()


def _hammer(folder: str, prefix: str, n: int) -> None:
    store = Store(multimodel.Path(folder))
    for i in range(n):
        store.commit(reserve(store, f"{prefix}{i}", memory_mb=0))
    os._exit(0)


def test_processes_changing_the_list_at_once_lose_no_change(store):
    """Four processes list 25 models each at once: the lock makes each change whole."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(store.folder), p, 25)) for p in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    listed = store.entries()[1]
    assert len(listed) == 100 and all(e.state == LOADED for e in listed.values())
    assert len({e.slot for e in listed.values()}) == 100


# --- the batch engine's end, for an unloaded model --------------------------------------
class Echo:
    def __init__(self, delay=0.0):
        self.delay = delay

    def warm_up(self):
        pass

    def predict(self, records):
        time.sleep(self.delay)
        return list(records)


def test_close_answers_the_queued_requests_then_refuses():
    engine = BatchEngine(lambda: Echo(delay=0.2), max_batch_size=1, name="m")
    assert engine.wait_ready(5)
    results = {}

    def client(i):
        try:
            results[i] = engine.predict([i], timeout=10)
        except NotReady as exc:
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)  # all three queued, the first computing
    engine.close("model 'm' was unloaded")
    for t in threads:
        t.join(10)
    assert [results[i] for i in range(3)] == [[0], [1], [2]]
    with pytest.raises(NotReady, match="unloaded"):
        engine.predict([9], timeout=1)
    deadline = time.monotonic() + 5
    while engine.model is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.model is None  # let go


def test_close_while_loading_never_becomes_ready():
    gate = threading.Event()
    engine = BatchEngine(lambda: (gate.wait(5), Echo())[1], name="m")
    engine.close()
    gate.set()
    assert engine.wait_settled(5) and not engine.ready
    with pytest.raises(NotReady):
        engine.predict([1], timeout=1)


class Turns:
    """A model that computes only once it holds `lock` (as `SharedModel` does), for
    `delay` seconds; `began` says since when it holds it."""

    def __init__(self, lock, delay):
        self.lock, self.delay, self._began = lock, delay, None

    def warm_up(self):
        pass

    def began(self):
        return self._began

    def predict(self, records):
        self._began = None
        with self.lock:
            self._began = time.monotonic()
            time.sleep(self.delay)
            return list(records)


def test_a_batch_waiting_its_turn_is_not_stuck_one_computing_too_long_is():
    lock, stuck = threading.Lock(), []
    engine = BatchEngine(
        lambda: Turns(lock, 0.05), stuck_after_s=0.5, on_stuck=stuck.append, name="m"
    )
    assert engine.wait_ready(5)
    with lock:  # another model computes for 1.5 s: three times the limit
        waiting = threading.Thread(target=lambda: stuck.append(engine.predict([1], timeout=10)))
        waiting.start()
        time.sleep(1.5)
    waiting.join(10)
    assert stuck == [[1]]  # answered, and the engine never gave up
    slow = BatchEngine(lambda: Turns(threading.Lock(), 1.5), stuck_after_s=0.5, name="s")
    assert slow.wait_ready(5)
    with pytest.raises(TimeoutError):  # Stuck: its own forward pass ran past the limit
        slow.predict([1], timeout=10)


def test_the_compute_lock_is_the_oss_under_gevent():
    """Forward passes of two models of one worker run on two native threads and take
    turns through one lock. Under gevent's monkey-patching, `threading.RLock` (even the
    original gevent saves) is built on greenlet locks, and two native threads contending
    for one hung the worker's loads: this runs that contention in a patched process."""
    code = """
from gevent import monkey; monkey.patch_all()
import sys, time
sys.path.insert(0, sys.argv[1])
from gevent.threadpool import ThreadPool
from sagemaker_platform.multimodel_service import _native_rlock
lock, pools = _native_rlock(), [ThreadPool(1), ThreadPool(1)]
def turn(i):
    for _ in range(20):
        with lock:
            time.sleep(0.005)
    return i
results = [pool.spawn(turn, i) for i, pool in enumerate(pools)]
print(sorted(r.get(timeout=10) for r in results))
"""
    done = helpers.run_code(code)
    assert done.stdout.strip() == "[0, 1]", done.stdout + done.stderr[-2000:]


def test_os_threads_that_log_never_hang_under_gevent():
    """gevent's patching turns logging's locks (the handler `logs.setup` made before it,
    and those made after) into greenlet locks; OS threads (loads, forward passes) that
    logged while the event loop's thread did waited on one for good: a multi-model load
    hung so. After `native.native_logging_locks` (the app does it at import) every lock
    is the OS's and three OS threads and a greenlet log 5,000 lines each, to the end."""
    code = """
import logging, os, sys
sys.path.insert(0, sys.argv[1])
from sagemaker_platform import logs
logs.setup()
from gevent import monkey; monkey.patch_all()
import _thread, gevent
from gevent.threadpool import ThreadPool
from sagemaker_platform import native
native.native_logging_locks()
logging.getLogger().handlers[0].stream = open(os.devnull, "w")
late = logging.StreamHandler(open(os.devnull, "w"))
print(type(logging.getLogger().handlers[0].lock) is _thread.RLock,
      type(late.lock) is _thread.RLock, flush=True)
log = logging.getLogger("serve")
def lines(n):
    for i in range(n):
        log.info("line %d", i)
        if i % 100 == 0:
            gevent.sleep(0)
    return n
main = gevent.spawn(lines, 5000)
done = [pool.spawn(lines, 5000) for pool in (ThreadPool(1), ThreadPool(1), ThreadPool(1))]
try:
    print(sum(r.get(timeout=10) for r in done) + main.get(timeout=10), flush=True)
except gevent.Timeout:
    print("hung", flush=True)
os._exit(0)
"""
    done = helpers.run_code(code, timeout=120)
    assert done.stdout.split("\n")[:2] == ["True True", "20000"], done.stdout + done.stderr[-2000:]


def test_where_a_load_is_found_under_gevent():
    """A load that overruns logs where it is (`BatchEngine.where`). Under gevent its OS
    thread must be named by the OS's ident, not the greenlet id patched `get_ident`
    gives; and a load blocked in a call gevent patched (`time.sleep` here) is a suspended
    greenlet while its thread runs a hub: its own frames, not the hub's, say where."""
    code = """
from gevent import monkey; monkey.patch_all()
import sys, time
sys.path.insert(0, sys.argv[1])
from sagemaker_platform import native
from sagemaker_platform.batching import BatchEngine
gate, opened = native.os_thread("allocate_lock")(), []
gate.acquire()
def blocked_in_c():
    gate.acquire(timeout=10)
    raise RuntimeError("loaded")
def sleeping():
    while not opened:
        time.sleep(0.01)
    raise RuntimeError("loaded")
for load, release in ((blocked_in_c, gate.release), (sleeping, lambda: opened.append(1))):
    engine = BatchEngine(load, on_load_error=lambda exc: None)
    deadline = time.monotonic() + 5
    while load.__name__ not in engine.where() and time.monotonic() < deadline:
        time.sleep(0.01)
    print(engine.where().split(" < ")[:2])
    release()
    print(engine.wait_settled(10), repr(engine.where()))
"""
    done = helpers.run_code(code)
    out = done.stdout.splitlines()
    assert len(out) == 4, done.stdout + done.stderr[-2000:]
    assert re.fullmatch(r"\['<string>:\d+ blocked_in_c', '\S+ run'\]", out[0]), out[0]
    assert re.fullmatch(r"\['\S+ sleep', '<string>:\d+ sleeping'\]", out[2]), out[2]
    assert out[1] == out[3] == "True ''"


def test_a_model_warming_up_never_holds_up_another_models_forward_passes():
    """The workers load listed models in the background while they serve the others: a
    warm-up of seconds (the MiniLM's) must not stall them (it did for 6 s, holding the
    worker's compute lock). Only forward passes take turns."""
    from sagemaker_platform.multimodel_service import SharedModel, _native_rlock
    from sagemaker_platform.plugin import Plugin
    from sagemaker_platform.runtime import Runtime

    warming, release = threading.Event(), threading.Event()

    class Slow(Plugin):
        name = "slow"

        def load(self, model_dir, runtime):
            return None

        def warm_up(self, model):
            warming.set()
            release.wait(10)

        def predict(self, model, records):
            return list(records)

    lock = _native_rlock()
    loading, serving = (
        SharedModel(Slow(), None, Runtime(), lock),
        SharedModel(Slow(), None, Runtime(), lock),
    )
    warm = threading.Thread(target=loading.warm_up)
    warm.start()
    try:
        assert warming.wait(5)
        answered = []
        other = threading.Thread(target=lambda: answered.append(serving.predict([1, 2])))
        other.start()
        other.join(2)
        assert answered == [[1, 2]], "a forward pass waited for another model's warm-up"
    finally:
        release.set()
        warm.join(10)
