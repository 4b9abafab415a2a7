"""benchmarks/bench_serve.py end to end, briefly, on the tiny model: it runs and prints
every figure the README quotes."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, subprocess_env

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="needs wrk: apt-get install wrk"
)


def run_benchmark(script: str, model_dir, tmp_path, *args: str) -> str:
    """The benchmark's stdout, run briefly (1-second figures, 2 rounds) on `model_dir`."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), f"--model-dir={model_dir}", *args],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_prints_every_figure_with_paired_rounds(trained_model, tmp_path):
    model = trained_model / "model"
    out = run_benchmark(
        "bench_serve.py", model, tmp_path, "--seconds=1", "--rounds=2", f"--weak-model-dir={model}"
    )
    assert len(re.findall(r"round \d: in-process fp32 limit", out)) >= 2
    for figure in (
        "served fp32 c=16 / in-process fp32 limit",
        "served fp32 c=16 / in-process fp32 with bucketing",
        "c=16 / in-process fp32 limit",
        "p50 c=1 - in-process fp32 batch-1 (ms)",
        "cold start median (s)",
        "argmax agreement with fp32",
        "c=16 / best peer in process",
    ):
        assert re.search(re.escape(figure) + r"\s+[-+]?\d", out), figure
    # The runtimes table: texts/s, ratio to fp32, agreement on the model and the weak one.
    for runtime in (
        "torch fp32, padded tokens computed (reference)",
        "this project, fp32",
        "ONNX Runtime fp32",
        "OpenVINO bf16 hint",
    ):
        assert re.search(
            re.escape(runtime) + r"\s+[\d.]+\s+[\d.]+\s+[01]\.\d{3}\s+[01]\.\d{3}", out
        ), runtime
    assert len(re.findall(r"^  runtimes round \d:", out, re.M)) == 2
    # The best peer is the fastest that answers as fp32 does: never int8's flipped answers.
    assert re.search(r"/ best peer \((ONNX Runtime fp32|OpenVINO [^)]+)\)", out)
    assert "errors 0" in out and not re.search(r"errors [1-9]", out)
    assert re.search(r"server: workers=\d+ threads=\d+ shared_cores=\d+", out)


def test_ab_serve_pairs_two_configurations(trained_model, tmp_path):
    out = run_benchmark(
        "ab_serve.py",
        trained_model / "model",
        tmp_path,
        "--a=MODEL_SERVER_WORKERS=1",
        "--b=MODEL_SERVER_WORKERS=2,MODEL_SERVER_THREADS=1",
        "--rounds=2",
        "--seconds=1",
    )
    assert len(re.findall(r"^round \d: A +[\d.]+ req/s .* B/A [\d.]+$", out, re.M)) == 2
    assert re.search(r"throughput B/A: median [\d.]+ \(rounds [\d.]+-[\d.]+\)", out)
    assert "non-2xx answers: 0" in out
