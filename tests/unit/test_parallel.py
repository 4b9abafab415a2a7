"""tests/parallel.py: the folder the workers of a parallel run share, and the order they
take the tests in (the scheduling itself: tests/integration/test_parallel_groups.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import parallel


@dataclass
class Factory:
    """tmp_path_factory's one method shared_dir calls."""

    base: Path

    def getbasetemp(self) -> Path:
        return self.base


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """As outside a worker: the shared folder under the test's own base temp."""
    monkeypatch.setattr(parallel, "WORKER", None)


def test_a_shared_dir_is_built_once_for_callers_asking_at_once(tmp_path):
    builds, got = [], []

    def build(folder: Path) -> None:
        builds.append(folder)
        time.sleep(0.3)  # the others ask meanwhile: they wait, then take it as it is
        (folder / "model.ckpt").write_text("weights")

    def ask() -> None:
        folder = parallel.shared_dir(Factory(tmp_path), "trained", build)
        got.append((folder, (folder / "model.ckpt").read_text()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(builds) == 1
    assert got == [(builds[0], "weights")] * 4


def test_a_failed_build_is_built_again_from_an_empty_folder(tmp_path):
    def broken(folder: Path) -> None:
        (folder / "half").write_text("written before the failure")
        raise RuntimeError("training failed")

    with pytest.raises(RuntimeError, match="training failed"):
        parallel.shared_dir(Factory(tmp_path), "trained", broken)
    folder = parallel.shared_dir(
        Factory(tmp_path), "trained", lambda f: (f / "whole").write_text("done")
    )
    assert sorted(p.name for p in folder.iterdir()) == ["whole"]


@dataclass
class Item:
    nodeid: str

    @property
    def fspath(self) -> str:
        return self.nodeid.split("::")[0]


def test_long_tests_first_then_integration_then_unit_each_in_its_order():
    ids = [
        "tests/unit/test_a.py::test_1",
        "tests/integration/test_x.py::test_1",
        "tests/integration/test_scale.py::test_sigterm_saves_at_once_and_a_restart_resumes[tabular]",
        "tests/unit/test_b.py::test_1",
        "tests/integration/test_bench_serve.py::test_1",
        "tests/integration/test_y.py::test_1",
    ]
    items = [Item(i) for i in ids]
    parallel._Order().pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [ids[2], ids[4], ids[1], ids[5], ids[0], ids[3]]
