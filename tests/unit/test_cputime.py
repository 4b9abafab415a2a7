"""tests/cputime.py: the per-test CPU log and its summary by file."""

import contextlib
import json
import subprocess
import sys
from types import SimpleNamespace

from tests import cputime


def test_summary_sums_each_file_and_ranks_the_costliest_first(tmp_path):
    log = tmp_path / "cpu.jsonl"
    rows = [
        {"test": "tests/a.py::t1", "worker": "gw0", "own": 1.0, "children": 2.0, "wall": 4.0},
        {"test": "tests/b.py::t1", "worker": "gw1", "own": 0.5, "children": 9.5, "wall": 6.0},
        {"test": "tests/a.py::t2[x]", "worker": "gw0", "own": 0.25, "children": 0.0, "wall": 1.0},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = cputime.summary(str(log)).splitlines()
    assert lines[0] == "3 tests, 13 CPU-s (tests' own + their subprocesses')"
    assert lines[2].split() == ["10.0", "0.5", "9.5", "6.0", "1", "tests/b.py"]
    assert lines[3].split() == ["3.2", "1.2", "2.0", "5.0", "2", "tests/a.py"]
    assert len(cputime.summary(str(log), top=1).splitlines()) == 3


def run_hook(nodeid: str, work) -> None:
    """Drive the hook wrapper around `work`, as pytest would around a test."""
    hook = cputime.pytest_runtest_protocol(SimpleNamespace(nodeid=nodeid), None)
    next(hook)
    work()
    with contextlib.suppress(StopIteration):
        next(hook)


def test_each_test_appends_its_own_and_its_subprocesses_cpu(monkeypatch, tmp_path):
    log = tmp_path / "cpu.jsonl"
    monkeypatch.setattr(cputime, "LOG", str(log))
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    run_hook("tests/x.py::child", lambda: subprocess.run([sys.executable, "-c", spin], check=True))
    run_hook("tests/x.py::own", lambda: exec(spin, {}))
    child, own = (json.loads(line) for line in log.read_text().splitlines())
    assert child["test"] == "tests/x.py::child" and child["children"] >= 0.25
    assert own["test"] == "tests/x.py::own" and own["own"] >= 0.25 and own["children"] == 0


def test_nothing_is_written_without_the_log(monkeypatch, tmp_path):
    monkeypatch.setattr(cputime, "LOG", None)
    monkeypatch.chdir(tmp_path)
    run_hook("tests/x.py::t", lambda: None)
    assert not list(tmp_path.iterdir())
