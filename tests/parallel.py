"""The suite in parallel: `make test` runs `pytest -n 3 --dist loadgroup` (pytest-xdist).

Most tests wait on a subprocess (`model/train`, `model/serve`) or a socket, so three
workers keep two cores busy. What this module (a plug-in tests/conftest.py registers) does
for them:

- **Groups.** The tests that take a module-scoped fixture of their file (a trained model, a
  server, a moto or MLflow server, a built wheel) run on one worker, so that it is built
  once; so do the tests of each unit test file (seconds each, in their file's order). Any
  other test goes to whichever worker is free. The groups are `xdist_group` marks, and
  `--dist loadgroup` schedules by them through `GroupScheduling`: pytest-xdist 3.8.0 reads
  the marks through the test's node id, which pytest 9.2 no longer lets it change
  (pytest-dev/pytest-xdist#1386), so it would silently split every group.
- **Order.** The tests known to take a minute or more start first, the unit tests last: the
  workers end on tests of seconds, not on a long one started last (pytest-randomly's
  shuffle is kept within each of the three parts).
- **Sharing.** `shared_dir`: a folder built once per run, by whichever worker asks first,
  for all of them (the session's trained models, the tiny backbone).
- **Threads.** One torch thread per process of a worker and its `train` subprocesses;
  OpenMP threads that wait sleep instead of spinning (`serve`'s workers set their own count).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1"...; None in one process
if WORKER:
    # The workers and their subprocesses share the cores: a process of several torch
    # threads among them spins on cores that another process holds (the tabular SIGTERM
    # job took 177 s at 2 threads and 46 s at 1 on the busy 2-core machine). One intra-op
    # thread each, unless the caller set a count. `serve` is not affected: it sets its
    # workers' OMP_NUM_THREADS from its own settings. Set before torch is first imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # `serve` sets its own workers' thread count (a worker computing alone takes both
    # cores), and OpenMP threads that wait at a barrier spin: on cores held by the other
    # workers' processes, a 2-thread forward pass of 2,000 texts took 9.8-12.7 s instead of
    # 0.8-1.3 s with waiting threads that sleep (passive). The suite's servers are tested
    # for what they answer, not timed; the benchmarks set nothing and measure the default.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Node ids (or their beginnings) of the tests that take a minute or more on the 2-core
# machine when three workers share it: started first. Only the order depends on this list.
LONG = (
    "tests/integration/test_bench_",
    "tests/integration/test_scale.py::test_sigterm_saves_at_once_and_a_restart_resumes",
    "tests/integration/test_tuning_trials.py",  # a module fixture of five training jobs
    "tests/integration/test_own_plugin.py::test_a_plugin_kept_outside_the_repo",
    "tests/integration/test_train.py::test_minilm_learns",
)

GROUPS_FILE = "xdist-groups.json"  # in the run's base temp: {node id: group}


def _kind(item) -> str:
    parts = Path(str(item.fspath)).parts
    return "unit" if "unit" in parts else "integration" if "integration" in parts else ""


def group_of(item) -> str | None:
    """The worker group of a test: its file, for a unit test or an integration test that
    takes a module-scoped fixture; None (any free worker) for the others."""
    module = item.nodeid.split("::", 1)[0]
    if _kind(item) == "unit":
        return module
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else ()
    return module if any(d.scope == "module" for chain in defs for d in chain) else None


def _run_dir(config) -> Path:
    """The run's base temp: the controller's, which holds each worker's own."""
    if WORKER:
        return Path(config.option.basetemp).parent
    return config._tmp_path_factory.getbasetemp()


@pytest.hookimpl(tryfirst=True)  # marks before pytest's -m selection and xdist read them
def pytest_collection_modifyitems(config, items):
    groups = {}
    for item in items:
        if group := group_of(item):
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item.nodeid] = group
    if WORKER:  # for GroupScheduling, in the controller; every worker writes the same
        part = _run_dir(config) / f"{GROUPS_FILE}.{WORKER}"
        part.write_text(json.dumps(groups))
        part.replace(part.with_name(GROUPS_FILE))


class _Order:
    @pytest.hookimpl(trylast=True)  # after pytest-randomly and pytest's own reordering
    def pytest_collection_modifyitems(self, items):
        def rank(item) -> int:
            if item.nodeid.startswith(LONG):
                return 0
            return 2 if _kind(item) == "unit" else 1

        items.sort(key=rank)


def pytest_configure(config):
    config.pluginmanager.register(_Order(), "tests-parallel-order")
    # Also where pytest-xdist is not loaded (-p no:xdist), under --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): tests run on one xdist worker")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":
        config.option.loadscopereorder = False  # the collection's order, as _Order left it
        return GroupScheduling(config, log)
    return None


try:
    from xdist.scheduler import LoadGroupScheduling
except ImportError:  # pytest-xdist not installed: the tests run in one process
    LoadGroupScheduling = object


class GroupScheduling(LoadGroupScheduling):
    """xdist's loadgroup, the groups read from the file the workers wrote at collection."""

    groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self.groups is None:  # first asked once every worker has collected
            path = _run_dir(self.config) / GROUPS_FILE
            self.groups = json.loads(path.read_text()) if path.exists() else {}
        return self.groups.get(nodeid) or super()._split_scope(nodeid)


def shared_dir(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder built once per run by `build(folder)`, and shared: by the tests of this
    process, and by every worker of a parallel run (the first to ask builds it while the
    others wait on a lock). Its users only read it; one that changes it copies it first."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if WORKER else base) / "shared"
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
