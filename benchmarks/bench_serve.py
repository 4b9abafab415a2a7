#!/usr/bin/env python3
"""Serving speed, measured side by side in one run on the same model and texts.

    make bench-serve            (or: python benchmarks/bench_serve.py [--model-dir DIR])

Prints, for fp32 and for the CPU default precision (bf16 where the CPU computes in it):
  - the in-process limit: tokenize + forward, no HTTP, warm, at the best batch size,
    and the batch-1 latency;
  - served throughput and p50/p99 latency through nginx -> gunicorn -> Flask at
    concurrency 1 and 16 (wrk, from Debian's packages, as the load generator);
  - cold start: `serve` process start to the first /ping 200;
  - the argmax agreement of each reduced precision with fp32 on a held-out set;
and the ratios the targets are stated in. Without --model-dir it first trains the MiniLM
classifier on the sample job (1 epoch, max_length 128) with model/train.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "model")]

from local_test import make_sample_data  # noqa: E402
from tests import helpers  # noqa: E402

THREADS = len(os.sched_getaffinity(0))


def long_texts(n: int, seed: int) -> list[str]:
    """Texts of a few hundred characters: several sample messages run together."""
    rows = make_sample_data.generate(n * 5, seed=seed)
    return [" ".join(r["text"] for r in rows[i * 5 : i * 5 + 5]) for i in range(n)]


def train_model(base: Path) -> Path:
    helpers.write_sample_job(
        base, {"epochs": "1", "max_length": "128", "batch_size": "16"}, 320, 80
    )
    print(
        "training the MiniLM classifier for the benchmark (1 epoch, max_length 128) ...", flush=True
    )
    result = helpers.run_entry("train", base, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return base / "model"


# --- in process -------------------------------------------------------------------------
def in_process(model_dir: Path, precision: str, texts: list[str]) -> dict:
    from text_classifier.inference import Model

    best = {"throughput": 0.0}
    for batch in (1, 8, 16, 32):
        model = Model(model_dir, precision, "cpu", THREADS, max_batch_size=batch)
        model.warm_up()
        n = 48 if batch == 1 else 192
        chunks = [texts[i : i + batch] for i in range(0, n, batch)]
        model.predict_proba(chunks[0], bucket=False)
        start = time.perf_counter()
        latencies = []
        for chunk in chunks:
            t0 = time.perf_counter()
            model.predict_proba(chunk, bucket=False)
            latencies.append(time.perf_counter() - t0)
        throughput = n / (time.perf_counter() - start)
        row = {"batch": batch, "throughput": throughput}
        if batch == 1:
            best["batch1_ms"] = statistics.median(latencies) * 1000
        print(
            f"  in-process {precision:5s} batch {batch:2d}: {throughput:6.1f} texts/s", flush=True
        )
        if throughput > best["throughput"]:
            best.update(row)
    return best


def agreement(model_dir: Path, precision: str, texts: list[str], reference) -> float:
    from text_classifier.inference import Model

    probs = Model(model_dir, precision, "cpu", THREADS).predict_proba(texts)
    return float((probs.argmax(-1) == reference).float().mean())


# --- served -----------------------------------------------------------------------------
def wrk_script(texts: list[str], path: Path) -> Path:
    bodies = [json.dumps(json.dumps({"inputs": t})) for t in texts]
    path.write_text(
        "bodies = {" + ",".join(bodies) + "}\n"
        "i = 0\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        '  return wrk.format(nil, "/invocations", nil, bodies[i])\n'
        "end\n"
    )
    return path


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, script: Path, concurrency: int, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(percentiles) != 2:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "errors": int(errors.group(1)) if errors else 0,
    }


def served(base: Path, precision: str | None, script: Path, seconds: int) -> dict:
    env = {"MODEL_SERVER_PRECISION": precision} if precision else {}
    with helpers.Server(base, env=env) as srv:
        srv.wait_ready(300)
        run_wrk(srv.url, script, 4, 2)  # warm the connections and the worker
        result = {}
        for c in (1, 16):
            result[c] = run_wrk(srv.url, script, c, seconds)
            r = result[c]
            print(
                f"  served {precision or 'default':7s} c={c:2d}: {r['rps']:6.1f} req/s  "
                f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}",
                flush=True,
            )
    return result


def cold_start(base: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with helpers.Server(base) as srv:
            times.append(srv.wait_ready(120))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="a trained model/ folder (default: train one)"
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    import torch

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    base = work / "opt_ml"
    if args.model_dir:
        shutil.copytree(args.model_dir, base / "model")
    else:
        train_model(base)
    model_dir = base / "model"
    texts = long_texts(256, seed=11)
    held_out = long_texts(500, seed=12)
    spec = json.loads((model_dir / "preprocessing.json").read_text())
    print(
        f"model {model_dir} max_length={spec['max_length']} texts ~{int(statistics.mean(map(len, texts)))} chars; "
        f"torch {torch.__version__}, {THREADS} cores",
        flush=True,
    )

    from text_classifier.inference import Model

    reference = Model(model_dir, "fp32", "cpu", THREADS).predict_proba(held_out).argmax(-1)
    agree = {p: agreement(model_dir, p, held_out, reference) for p in ("int8", "bf16")}
    print(
        "  argmax agreement with fp32 on 500 held-out texts: "
        + ", ".join(f"{p} {a:.2%}" for p, a in agree.items())
    )

    from text_classifier.inference import resolve_precision

    default = resolve_precision("auto", "cpu")
    limit = {p: in_process(model_dir, p, texts) for p in ("fp32", default)}
    script = wrk_script(random.Random(0).sample(texts, 64), work / "post.lua")
    served_fp32 = served(base, "fp32", script, args.seconds)
    served_default = served(base, None, script, args.seconds)
    starts = cold_start(base, 3)
    print(f"  cold start (serve start -> /ping 200): {', '.join(f'{t:.2f}' for t in starts)} s")

    fp32_limit = limit["fp32"]["throughput"]
    rows = [
        ("in-process fp32 limit (texts/s)", fp32_limit, f"batch {limit['fp32']['batch']}"),
        (
            f"in-process {default} limit (texts/s)",
            limit[default]["throughput"],
            f"batch {limit[default]['batch']}",
        ),
        (
            "served fp32 c=16 / in-process fp32",
            served_fp32[16]["rps"] / fp32_limit,
            "target >= 1.0",
        ),
        (
            f"served default ({default}) c=16 / in-process fp32",
            served_default[16]["rps"] / fp32_limit,
            "target >= 1.8",
        ),
        (
            "served fp32 p50 c=1 - in-process fp32 batch-1 (ms)",
            served_fp32[1]["p50_ms"] - limit["fp32"]["batch1_ms"],
            "target <= 3",
        ),
        (
            f"served {default} p50 c=1 - in-process {default} batch-1 (ms)",
            served_default[1]["p50_ms"] - limit[default]["batch1_ms"],
            "target <= 3",
        ),
        ("cold start median (s)", statistics.median(starts), "target < 4"),
        ("bf16 argmax agreement with fp32", agree["bf16"], "target >= 0.99 (the default)"),
        ("int8 argmax agreement with fp32", agree["int8"], "opt-in only"),
    ]
    print("\nsummary")
    for name, value, note in rows:
        print(f"  {name:52s} {value:8.3f}   {note}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
