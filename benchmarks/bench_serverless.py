#!/usr/bin/env python3
"""Memory and start of a serverless endpoint's container, to choose its memory size.

    make bench-serverless       (or: python benchmarks/bench_serverless.py [--model-dir DIR])

Runs `serve` as a serverless endpoint runs it (MODEL_SERVER_MODE=serverless: one CPU
worker, 4 MB bodies), for fp32 and for the CPU default precision, and prints:
  - cold start: `serve` process start to the first /ping 200 (serverless: within 3 min);
  - the resident memory (RSS) of every process of the container (nginx, the gunicorn
    master, the worker) once the model is ready, after a mix of requests, and the
    worker's peak (VmHWM) after the largest request a serverless endpoint takes (4 MB of
    JSON Lines, or 10,000 records, MODEL_SERVER_MAX_RECORDS, if fewer);
  - the smallest serverless memory size (1-6 GB) that holds the peak with a margin.
Without --model-dir it first trains the MiniLM classifier (bench_serve.py's model).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "model")]

from benchmarks.bench_serve import long_texts, train_model  # noqa: E402
from sagemaker_platform.config import MODE_LIMITS  # noqa: E402
from tests import helpers  # noqa: E402

MB = 1024 * 1024
SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)  # ServerlessConfig's MemorySizeInMB
MARGIN = 1.25  # room for the allocator, page cache and what a request may add


def status_mb(pid: int, key: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) / 1024


def processes(srv: helpers.Server) -> dict[str, int]:
    """{name: pid} for serve, nginx's processes, the gunicorn master and its worker."""
    named = {"serve": srv.proc.pid}
    for pid in helpers.child_pids(srv.proc.pid):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "gunicorn" in cmd:
            named["gunicorn master"] = pid
            workers = helpers.child_pids(pid)
            if len(workers) != 1:
                sys.exit(f"expected one worker in serverless mode, found {len(workers)}")
            named["worker"] = workers[0]
        elif "nginx" in cmd:
            named["nginx master"] = pid
            for i, worker in enumerate(helpers.child_pids(pid)):
                named[f"nginx worker {i + 1}"] = worker
    return named


def rss(named: dict[str, int]) -> dict[str, float]:
    return {name: status_mb(pid, "VmRSS") for name, pid in named.items()}


def jsonlines_body(texts: list[str], size: int, records: int) -> bytes:
    """As many texts as fit in `size` bytes of JSON Lines, at most `records` of them."""
    lines, total, i = [], 0, 0
    while True:
        line = json.dumps(texts[i % len(texts)]) + "\n"
        if total + len(line.encode()) > size or len(lines) == records:
            return "".join(lines).encode()
        lines.append(line)
        total += len(line.encode())
        i += 1


def measure(base: Path, precision: str, texts: list[str], requests_n: int, big_mb: float) -> dict:
    # The timeout raised so that the large request completes however slow this machine:
    # its memory is what is measured (SageMaker stops a serverless request at 60 s).
    env = {
        "MODEL_SERVER_MODE": "serverless",
        "MODEL_SERVER_PRECISION": precision,
        "MODEL_SERVER_TIMEOUT": "900",
    }
    start = time.monotonic()
    with helpers.Server(base, env=env) as srv:
        srv.wait_ready(180)
        cold = time.monotonic() - start
        named = processes(srv)
        ready = rss(named)
        session = requests.Session()
        for i in range(requests_n):
            batch = texts[i % len(texts) : i % len(texts) + 1 + i % 16]
            r = session.post(srv.url + "/invocations", json={"inputs": batch}, timeout=60)
            assert r.status_code == 200, r.text
        served = rss(named)
        # The largest request a serverless endpoint takes: its body limit or its record
        # limit, whichever comes first (the benchmark's texts reach the records first).
        body = jsonlines_body(texts, int(big_mb * MB), MODE_LIMITS["serverless"].max_records)
        t = time.monotonic()
        r = session.post(
            srv.url + "/invocations",
            data=body,
            headers={"Content-Type": "application/jsonlines", "Accept": "text/csv"},
            timeout=900,
        )
        big_s = time.monotonic() - t
        assert r.status_code == 200, r.text[:300]
        after_big = rss(named)
        peak = status_mb(named["worker"], "VmHWM")
        log = srv.output()
    chosen = re.search(r"precision=(\w+)", log.split("model loaded", 1)[1]).group(1)
    return {
        "precision": chosen,
        "cold": cold,
        "ready": ready,
        "served": served,
        "after_big": after_big,
        "peak": peak,
        "big_lines": body.count(b"\n"),
        "big_s": big_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="a trained model/ folder (default: train one)"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests of 1-16 texts")
    parser.add_argument(
        "--big-mb", type=float, default=4.0, help="the large request's size (serverless: 4)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serverless-", ignore_cleanup_errors=True) as tmp:
        measure_all(args, Path(tmp))


def measure_all(args: argparse.Namespace, work: Path) -> None:
    """Both precisions' figures and the size, with the model under `work` (`main`
    removes it)."""
    base = work / "opt_ml"
    if args.model_dir:
        shutil.copytree(args.model_dir, base / "model")
    else:
        train_model(base)
    texts = long_texts(256, seed=11)
    worst = 0.0
    for precision in ("fp32", "auto"):
        m = measure(base, precision, texts, args.requests, args.big_mb)
        print(f"\n{m['precision']} (MODEL_SERVER_PRECISION={precision})")
        print(f"  cold start: {m['cold']:.2f} s")
        for name in m["ready"]:
            print(
                f"  RSS {name}: ready {m['ready'][name]:.0f} MB, after {args.requests} "
                f"requests {m['served'][name]:.0f} MB, after a {args.big_mb:g} MB request "
                f"{m['after_big'][name]:.0f} MB"
            )
        total = sum(m["after_big"].values())
        print(f"  RSS all processes after the {args.big_mb:g} MB request: {total:.0f} MB")
        print(
            f"  worker peak (VmHWM): {m['peak']:.0f} MB "
            f"(the {args.big_mb:g} MB request: {m['big_lines']} texts in {m['big_s']:.1f} s)"
        )
        worst = max(worst, m["peak"] + total - m["after_big"]["worker"])
    need = worst * MARGIN
    size = next((s for s in SIZES_MB if s >= need), None)
    print(
        f"\npeak of the container: {worst:.0f} MB; x{MARGIN} margin: {need:.0f} MB; "
        f"smallest serverless memory size that holds it: {size or 'none'} MB"
    )


if __name__ == "__main__":
    main()
