"""`pytest -n 3 --dist loadgroup` with tests/parallel.py, on a small suite of its own: the
tests that take a module-scoped fixture run on one worker (built once), the others on any.

pytest-xdist 3.8.0's own loadgroup, under pytest 9.2, would spread them over the workers
(pytest-dev/pytest-xdist#1386): every module fixture built once per worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests import helpers

SUITE = (
    """
import pytest

@pytest.fixture(scope="module")
def server():
    return object()

"""
    + "".join(f"def test_served_{i}(server):\n    pass\n\n" for i in range(6))
    + "".join(f"def test_alone_{i}():\n    pass\n\n" for i in range(6))
)


def test_a_module_fixtures_tests_share_one_worker_and_the_others_spread(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "from tests import parallel\n\n\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(parallel, 'tests-parallel')\n"
    )
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(helpers.ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-v",
         "-p", "no:randomly", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         f"--basetemp={tmp_path / 'tmp'}", "test_suite.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = re.findall(r"\[(gw\d)\] .*PASSED test_suite\.py::test_(served|alone)_\d", result.stdout)
    assert len(ran) == 12, result.stdout[-3000:]
    assert len({worker for worker, kind in ran if kind == "served"}) == 1, result.stdout
    assert len({worker for worker, kind in ran if kind == "alone"}) > 1, result.stdout
