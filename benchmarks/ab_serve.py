#!/usr/bin/env python3
"""Two serving configurations side by side: which is faster on this machine?

    python benchmarks/ab_serve.py --model-dir DIR --b MODEL_SERVER_WORKERS=1
    python benchmarks/ab_serve.py --model-dir DIR --a MODEL_SERVER_WORKERS=1 \\
        --b MODEL_SERVER_WORKERS=2,MODEL_SERVER_THREADS=1 --concurrency 1

Starts both servers (nginx, gunicorn, the model; an idle server costs nothing), then
alternates short wrk runs between them, A first in even rounds and B first in odd ones,
and prints each round and the median of the paired ratios B/A. A machine whose speed
drifts by 5-30% from minute to minute (this one) cannot tell a 10% change from two runs
minutes apart; runs seconds apart, in alternating order, can. `--a`/`--b` are
comma-separated VAR=value settings over the defaults (empty: the defaults).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "model")]

from benchmarks.bench_serve import long_texts, run_wrk, wrk_script  # noqa: E402
from tests import helpers  # noqa: E402


def settings(text: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"expected VAR=value[,VAR=value...], got {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="a trained model/ folder")
    parser.add_argument("--a", default="", help="configuration A (default: the defaults)")
    parser.add_argument("--b", default="", help="configuration B")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3, help="each wrk run")
    args = parser.parse_args()
    configs = {"A": settings(args.a), "B": settings(args.b)}

    with tempfile.TemporaryDirectory(prefix="ab-serve-", ignore_cleanup_errors=True) as tmp:
        compare(args, configs, Path(tmp))


def compare(args: argparse.Namespace, configs: dict[str, dict[str, str]], work: Path) -> None:
    """The paired rounds and their summary, with the scripts under `work` (`main`
    removes it)."""
    base = work / "opt_ml"
    base.mkdir(parents=True)
    (base / "model").symlink_to(args.model_dir.resolve(), target_is_directory=True)
    texts = random.Random(0).sample(long_texts(256, seed=11), 64)
    script = wrk_script(texts, work / "post.lua")
    with (
        helpers.Server(base, env=configs["A"]) as a,
        helpers.Server(base, env=configs["B"]) as b,
    ):
        servers = {"A": a, "B": b}
        for srv in servers.values():
            srv.wait_ready(300)
            # Warm every worker: 2 s, or a round's length where that is shorter (the test).
            run_wrk(srv.url, script, args.concurrency, min(2, args.seconds))
        rows, every = [], []
        for i in range(args.rounds):
            order = "AB" if i % 2 == 0 else "BA"
            row = {
                k: run_wrk(servers[k].url, script, args.concurrency, args.seconds) for k in order
            }
            # A round in which either side completed no request (a machine too loaded for
            # wrk's window) has no ratio: it is shown and left out, never divided by.
            every.append(row)
            answered = row["A"]["rps"] > 0 and row["B"]["rps"] > 0
            if answered:
                rows.append(row)
            ratio = f"{row['B']['rps'] / row['A']['rps']:.3f}" if answered else "n/a"
            print(
                f"round {i + 1}: A {row['A']['rps']:6.1f} req/s p50 {row['A']['p50_ms']:6.1f} ms"
                f" | B {row['B']['rps']:6.1f} req/s p50 {row['B']['p50_ms']:6.1f} ms"
                f" | B/A {ratio}",
                flush=True,
            )
    if not rows:
        raise SystemExit("no round completed a request on both sides: rerun on a quieter machine")
    ratios = [r["B"]["rps"] / r["A"]["rps"] for r in rows]
    p50 = [r["B"]["p50_ms"] - r["A"]["p50_ms"] for r in rows]
    errors = sum(r[k]["errors"] for r in every for k in "AB")
    print(
        f"\nc={args.concurrency}  A={configs['A'] or 'defaults'}  B={configs['B'] or 'defaults'}\n"
        f"  throughput B/A: median {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.3f}-{max(ratios):.3f})\n"
        f"  p50 B-A: median {statistics.median(p50):+.1f} ms\n"
        f"  non-2xx answers: {errors}"
    )


if __name__ == "__main__":
    main()
