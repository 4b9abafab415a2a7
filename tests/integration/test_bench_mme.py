"""benchmarks/bench_mme.py end to end, briefly, on the tiny model: it runs and prints
every figure the docs quote."""

import re
import shutil

import pytest

from tests.helpers import run_benchmark

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="needs wrk: apt-get install wrk"
)


def test_prints_cold_loads_memory_and_paired_throughput(trained_model, tmp_path):
    out = run_benchmark(
        "bench_mme.py",
        trained_model / "model",
        tmp_path,
        "--models=3",
        "--cold=2",
        "--seconds=1",
        "--rounds=2",
    )
    number = r"\d+(\.\d+)?"
    assert re.search(rf"cold load, first .*POST /models {number} s, first answer {number} s", out)
    assert re.search(rf"cold load median of 1 later: POST /models {number} s", out)
    assert re.search(rf"of which, .*: load {number} s, warm-up {number} s", out)
    assert re.search(r"worker RSS \(MB\).*; 3 models [\d ]+; one more model per worker", out)
    assert (
        len(re.findall(rf"^round \d: one model {number} req/s .* ratio {number}$", out, re.M)) == 2
    )
    assert re.search(rf"spread over 3 models / one model: median {number} \(rounds", out)
    assert "non-2xx answers: 0" in out
    assert re.search(r"server: workers=\d+ threads=\d+ shared_cores=\d+", out)
