"""benchmarks/bench_serverless.py end to end, briefly, on the tiny model: it runs as a
serverless endpoint runs and prints every figure the README quotes."""

import re

from tests.helpers import run_benchmark


def test_prints_the_memory_of_every_process_and_a_size(trained_model, tmp_path):
    out = run_benchmark(
        "bench_serverless.py", trained_model / "model", tmp_path, "--requests=10", "--big-mb=0.1"
    )
    assert out.count("cold start: ") == 2
    for name in ("serve", "gunicorn master", "worker", "nginx master", "nginx worker 1"):
        assert len(re.findall(rf"RSS {name}: ready \d+ MB", out)) == 2, out
    worker = [float(x) for x in re.findall(r"RSS worker: ready (\d+) MB", out)]
    assert all(100 < mb < 2000 for mb in worker), worker  # a torch process, one model
    assert re.search(r"smallest serverless memory size that holds it: 1024 MB", out), out
