"""benchmarks/bench_serverless.py end to end, briefly, on the tiny model: it runs as a
serverless endpoint runs and prints every figure the README quotes."""

import re
import subprocess
import sys

from tests.helpers import ROOT, open_tmpdir, subprocess_env


def test_prints_the_memory_of_every_process_and_a_size(trained_model, tmp_path):
    with open_tmpdir() as scratch:  # its temporary folder: left empty
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "bench_serverless.py"),
                f"--model-dir={trained_model / 'model'}",
                "--requests=10",
                "--big-mb=0.1",
            ],
            env=subprocess_env(tmp_path, {"TMPDIR": str(scratch)}),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert not list(scratch.iterdir())
    out = done.stdout
    assert out.count("cold start: ") == 2
    for name in ("serve", "gunicorn master", "worker", "nginx master", "nginx worker 1"):
        assert len(re.findall(rf"RSS {name}: ready \d+ MB", out)) == 2, out
    worker = [float(x) for x in re.findall(r"RSS worker: ready (\d+) MB", out)]
    assert all(100 < mb < 2000 for mb in worker), worker  # a torch process, one model
    assert re.search(r"smallest serverless memory size that holds it: 1024 MB", out), out
