#!/usr/bin/env python3
"""A multi-model endpoint's figures, measured in one run on one server.

    python benchmarks/bench_mme.py                   # the tests' tiny text classifier
    python benchmarks/bench_mme.py --minilm          # the MiniLM classifier (trains it)
    python benchmarks/bench_mme.py --model-dir DIR   # any trained model directory

Starts `serve` as SageMaker starts a multi-model endpoint (no model; the default workers
and precision unless set), with copies of one trained model under models/<name>/model,
and prints:
  - cold load: POST /models to its 200, and to the first 200 of an invocation sent
    right after it (which may reach the worker that has not loaded it yet, and wait for
    it), each on a server otherwise idle; the first load (the workers import torch and
    the plug-in) apart from the median of the later ones;
  - each worker's resident memory with no model, with one, and with 10, and what one
    more model costs a worker;
  - throughput with wrk at concurrency 16: requests spread evenly over 10 models, beside
    the same requests all to one model, in alternating rounds (this machine's speed
    drifts from minute to minute, so each ratio pairs two neighbouring runs), and the
    median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "model"), str(ROOT / "benchmarks")]

import requests  # noqa: E402
from bench_serve import run_wrk  # noqa: E402

from tests import helpers  # noqa: E402

JSON = "application/json"
CONCURRENCY = 16


def train(base: Path, minilm: bool) -> Path:
    """A text classifier trained on the sample job: the tests' tiny backbone (seconds),
    or the packaged MiniLM (1 epoch, max_length 128: minutes on a CPU)."""
    if minilm:
        hp = {"epochs": "1", "max_length": "128", "batch_size": "16"}
        rows = 320
    else:
        backbone = helpers.make_tiny_backbone(base.parent / "tiny_backbone")
        hp = helpers.test_hyperparameters("text_classifier", backbone)
        rows = 96
    print(f"training the {'MiniLM' if minilm else 'tiny'} text classifier ...", flush=True)
    helpers.write_sample_job(base, hp, rows, 32)
    result = helpers.run_entry("train", base, timeout=3600)
    if result.returncode != 0:
        sys.exit(f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return base / "model"


def bodies(model_dir: Path, n: int = 64) -> list[str]:
    """One-record JSON requests: a text each for a text classifier, else the plug-in's
    sample request."""
    manifest = json.loads((model_dir / "plugin.json").read_text())
    plugin = manifest.get("plugin", "text_classifier")
    if plugin == "text_classifier":
        from plugins.text_classifier import sample

        return [json.dumps({"inputs": r["text"]}) for r in sample.generate(n, seed=7)]
    return [helpers.sample(plugin).PAYLOADS[JSON].decode()]


def wrk_script(paths: list[str], texts: list[str], out: Path) -> Path:
    """Requests cycling through `texts`, the i-th to paths[i % len(paths)]."""
    out.write_text(
        "paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "bodies = {" + ",".join(json.dumps(t) for t in texts) + "}\n"
        "i = 0\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  i = i + 1\n"
        "  return wrk.format(nil, paths[i % #paths + 1], nil, bodies[i % #bodies + 1])\n"
        "end\n"
    )
    return out


def worker_rss_mb(srv) -> list[float]:
    master = int(re.findall(r"Listening at: \S+ \((\d+)\)", srv.output())[0])
    out = []
    for pid in sorted(helpers.child_pids(master)):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def wait_loaded(srv, models: list[str], timeout: float = 1800) -> None:
    """Until every worker's log says it holds every model: the throughput rounds must
    not share the CPU with background loads."""
    master = int(re.findall(r"Listening at: \S+ \((\d+)\)", srv.output())[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = srv.output()
        held = {
            (m, int(pid)) for m, pid in re.findall(r"ready model=(\S+) .*worker_pid=(\d+)", log)
        }
        if all((m, pid) in held for m in models for pid in helpers.child_pids(master)):
            return
        time.sleep(0.5)
    sys.exit("the workers did not load every model in time")


def load(srv, base: Path, name: str) -> None:
    url = str(base / "models" / name / "model")
    r = requests.post(srv.url + "/models", json={"model_name": name, "url": url}, timeout=600)
    if r.status_code != 200:
        sys.exit(f"POST /models {name}: {r.status_code} {r.text}\n{srv.output()[-3000:]}")


def cold_load(srv, base: Path, name: str, body: str) -> tuple[float, float]:
    """(seconds to POST /models's 200, seconds to the first answer after it)."""
    start = time.monotonic()
    load(srv, base, name)
    loaded = time.monotonic()
    while True:
        r = requests.post(
            f"{srv.url}/models/{name}/invoke",
            data=body,
            headers={"Content-Type": JSON},
            timeout=600,
        )
        if r.status_code == 200:
            break
        if r.status_code != 503:
            sys.exit(f"invoke {name}: {r.status_code} {r.text}")
    answered = time.monotonic()
    wait_loaded(srv, [name])  # the other workers' copies too: the next load starts idle
    assert requests.delete(f"{srv.url}/models/{name}", timeout=60).status_code == 200
    return loaded - start, answered - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a trained model directory")
    parser.add_argument("--minilm", action="store_true", help="train and use the MiniLM")
    parser.add_argument("--models", type=int, default=10, help="models the requests spread over")
    parser.add_argument("--cold", type=int, default=4, help="cold loads to time")
    parser.add_argument("--seconds", type=int, default=8, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="", help="MODEL_SERVER_WORKERS (default: auto)")
    parser.add_argument("--precision", default="", help="MODEL_SERVER_PRECISION (default: auto)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-mme-"))
    try:
        model_dir = args.model_dir or train(work / "train" / "opt_ml", args.minilm)
        base = work / "opt_ml"
        names = [f"m{i}" for i in range(args.models)] + [f"cold{i}" for i in range(args.cold)]
        for name in names:
            shutil.copytree(model_dir, base / "models" / name / "model")
        texts = bodies(model_dir)
        env = {"MODEL_SERVER_MULTI_MODEL": "true"}
        if args.workers:
            env["MODEL_SERVER_WORKERS"] = args.workers
        if args.precision:
            env["MODEL_SERVER_PRECISION"] = args.precision
        with helpers.Server(base, env=env) as srv:
            srv.wait_ready(120)
            setup = re.search(r"workers=\S+ threads=\S+ shared_cores=\S+ device=\S+", srv.output())
            print(f"server: {setup.group(0) if setup else '?'}", flush=True)
            empty = worker_rss_mb(srv)

            # --- cold loads
            colds = [cold_load(srv, base, f"cold{i}", texts[i]) for i in range(args.cold)]
            first, later = colds[0], colds[1:] or colds
            print(
                f"cold load, first (imports torch and the plug-in): POST /models "
                f"{first[0]:.2f} s, first answer {first[1]:.2f} s"
            )
            print(
                f"cold load median of {len(later)} later: POST /models "
                f"{statistics.median(c[0] for c in later):.2f} s, first answer "
                f"{statistics.median(c[1] for c in later):.2f} s"
            )

            split = [
                re.search(
                    rf"ready model=cold{i} load_seconds=(\S+) warm_up_seconds=(\S+)", srv.output()
                )
                for i in range(1, args.cold)
            ]
            if all(split):
                print(
                    "  of which, in the worker that took POST /models (median): load "
                    f"{statistics.median(float(m.group(1)) for m in split):.2f} s, warm-up "
                    f"{statistics.median(float(m.group(2)) for m in split):.2f} s"
                )

            # --- memory and the throughput rounds
            models = [f"m{i}" for i in range(args.models)]
            one = wrk_script([f"/models/{models[0]}/invoke"], texts, work / "one.lua")
            spread = wrk_script([f"/models/{m}/invoke" for m in models], texts, work / "all.lua")
            load(srv, base, models[0])
            wait_loaded(srv, models[:1])
            # and has computed with it (2 s, or a round's length where shorter: the test)
            run_wrk(srv.url, one, CONCURRENCY, min(2, args.seconds))
            precision = re.findall(r"model loaded .*?precision=(\S+)", srv.output())
            print(f"precision: {precision[-1] if precision else '?'}")
            with_one = worker_rss_mb(srv)
            for name in models[1:]:
                load(srv, base, name)
            wait_loaded(srv, models)  # every worker loads them in the background
            run_wrk(srv.url, spread, CONCURRENCY, min(3, args.seconds))
            with_all = worker_rss_mb(srv)
            each = [
                (b - a) / max(1, len(models) - 1) for a, b in zip(with_one, with_all, strict=True)
            ]
            print(
                "worker RSS (MB), each worker: no model "
                + " ".join(f"{v:.0f}" for v in empty)
                + "; 1 model "
                + " ".join(f"{v:.0f}" for v in with_one)
                + f"; {len(models)} models "
                + " ".join(f"{v:.0f}" for v in with_all)
                + "; one more model per worker "
                + " ".join(f"{v:.1f}" for v in each)
            )
            ratios, errors = [], 0
            for i in range(args.rounds):
                a = run_wrk(srv.url, one, CONCURRENCY, args.seconds)
                b = run_wrk(srv.url, spread, CONCURRENCY, args.seconds)
                errors += a["errors"] + b["errors"]
                ratios.append(b["rps"] / a["rps"])
                print(
                    f"round {i + 1}: one model {a['rps']:.1f} req/s (p50 {a['p50_ms']:.0f} ms, "
                    f"p99 {a['p99_ms']:.0f} ms); spread over {len(models)} {b['rps']:.1f} req/s "
                    f"(p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms); ratio {ratios[-1]:.3f}"
                )
            print(
                f"throughput spread over {len(models)} models / one model: median "
                f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
            )
            print(f"non-2xx answers: {errors}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
