"""Where the suite's CPU time goes: `TEST_CPU_LOG=FILE make test` appends a JSON line per
test with the CPU seconds of the test process and of the subprocesses it waited for
(`model/train`, `model/serve` and its gunicorn workers, nginx, moto), and the wall clock;
`python -m tests.cputime FILE` sums them by file and by kind of work.

A module or session fixture's cost lands on the first test that used it. The suite's
wall clock on 2 cores is about its CPU seconds / 2, so this is the budget to cut.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

LOG = os.environ.get("TEST_CPU_LOG")


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not LOG:
        yield
        return
    (own0, kids0), wall0 = _cpu(), time.monotonic()
    yield
    (own1, kids1), wall1 = _cpu(), time.monotonic()
    line = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "own": round(own1 - own0, 3),
        "children": round(kids1 - kids0, 3),
        "wall": round(wall1 - wall0, 3),
    }
    with open(LOG, "a") as out:  # one short write per line: workers' lines never interleave
        out.write(json.dumps(line) + "\n")


def summary(path: str, top: int = 40) -> str:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for row in rows:
        entry = by_file[row["test"].split("::", 1)[0]]
        entry[0] += row["own"]
        entry[1] += row["children"]
        entry[2] += row["wall"]
        entry[3] += 1
    total = sum(e[0] + e[1] for e in by_file.values())
    lines = [f"{len(rows)} tests, {total:.0f} CPU-s (tests' own + their subprocesses')"]
    lines.append(f"{'CPU-s':>7} {'own':>6} {'subproc':>7} {'wall':>7} {'tests':>5}  file")
    ranked = sorted(by_file.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    for name, (own, kids, wall, n) in ranked[:top]:
        lines.append(f"{own + kids:7.1f} {own:6.1f} {kids:7.1f} {wall:7.1f} {n:5d}  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(sys.argv[1], *(int(a) for a in sys.argv[2:3])))
