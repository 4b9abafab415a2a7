#!/usr/bin/env python3
"""Serving speed, measured side by side in one run on the same model and texts.

    make bench-serve            (or: python benchmarks/bench_serve.py [--model-dir DIR])

Prints, for fp32 and for the CPU default precision (bf16 where the CPU computes in it):
  - the in-process limit: tokenize + forward, no HTTP, warm, at the best batch size, in
    input order, every padded token computed (the plain loop a user would write with
    transformers);
  - the runtimes table: the project's fp32 (which skips padded tokens) and default
    precision beside ONNX Runtime and OpenVINO (benchmarks/peers.py) on the same
    network and texts, with each one's argmax agreement with the reference;
  - served throughput and p50/p99 latency through nginx -> gunicorn -> Flask (the
    default workers: on CPU one per core, sharing the cores), with wrk from Debian's
    packages as the load generator: at concurrency 1 in rounds, each right after the
    in-process batch-1 latency on the same texts, and at concurrency 16 in rounds, each
    beside a fresh measurement of the in-process fp32 limit and of the model in process
    with the server's length bucketing; figures are the medians of those paired rounds,
    because this machine's speed drifts by 5-30% from minute to minute;
  - cold start: `serve` process start to the first /ping 200;
  - the argmax agreement of each reduced precision with fp32 on a held-out set;
and the ratios the targets are stated in: the default against the fastest runtime in the
table whatever its agreement (the peer), and against the fastest whose argmaxes agree
with fp32's (the faithful peer) beside it. Without --model-dir it first trains the MiniLM
classifier on the sample job (1 epoch, max_length 128) with model/train.

The test runs it briefly (tests/integration/test_bench_serve.py): --seconds, --rounds,
--held-out, --rate-texts, --cold-starts, --threads, --workers and --server-threads
shrink the work without leaving out a figure, and a --weak-model-dir that is the
--model-dir folder itself is measured once (its agreement column is the trained
model's). Their defaults are the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "model")]

from benchmarks import peers  # noqa: E402
from plugins.text_classifier import sample as text_sample  # noqa: E402
from tests import helpers  # noqa: E402

THREADS = len(os.sched_getaffinity(0))  # in-process threads: --threads sets it
RATE_TEXTS = 192  # texts per in-process throughput figure: --rate-texts sets it
SERVER_ENV: dict[str, str] = {}  # every server's settings over the defaults: --workers...
# The runtimes table's yardstick for speed and answers: torch in fp32 over the whole
# padded grid, as transformers computes it (what the "torch fp32" measured).
REFERENCE = "torch fp32, padded tokens computed (reference)"
FIDELITY = 0.999  # argmax agreement with fp32 a runtime needs to count as a peer


def long_texts(n: int, seed: int) -> list[str]:
    """Texts of a few hundred characters: several sample messages run together."""
    rows = text_sample.generate(n * 5, seed=seed)
    return [" ".join(r["text"] for r in rows[i * 5 : i * 5 + 5]) for i in range(n)]


# The weakly trained model: 64 texts, 1 epoch, a learning rate too small to move the
# backbone much. Its classes are barely apart (validation accuracy near chance), so its
# argmaxes sit close to ties: where a precision shortcut shows first.
WEAK = {"learning_rate": "3e-6", "head_learning_rate": "3e-4"}


def train_model(base: Path, weak: bool = False) -> Path:
    helpers.write_sample_job(
        base,
        {"epochs": "1", "max_length": "128", "batch_size": "16", **(WEAK if weak else {})},
        64 if weak else 320,
        80,
    )
    print(
        f"training the {'weakly trained ' if weak else ''}MiniLM classifier for the benchmark "
        "(1 epoch, max_length 128) ...",
        flush=True,
    )
    result = helpers.run_entry("train", base, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return base / "model"


# --- in process -------------------------------------------------------------------------
def load(model_dir: Path, precision: str, batch: int):
    from tests.helpers import text_model as Model

    model = Model(model_dir, precision, "cpu", THREADS, max_batch_size=batch)
    model.warm_up()
    return model


def recheck_margin(model_dir: Path, texts: list[str]) -> dict[str, float]:
    """What the bf16 default's near-tie recheck (`bf16.NEAR_TIE`) rests on, on `texts`:
    `bf16.compare` of the bf16 network's logits and the fp32 one's (how far bf16 moved
    them, the rows rechecked, the argmaxes bf16 alone flips and those outside the
    margin, which would reach the answers)."""
    import torch

    from sagemaker_platform import bf16

    model = load(model_dir, "bf16", 16)
    fast, exact = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), 16):
            batch = model.encoder.pad(model.encoder.token_ids(texts[i : i + 16]))
            ids, mask = batch["input_ids"], batch["attention_mask"]
            fast.append(model.net(ids, mask).float())
            exact.append(model.exact(ids, mask).float())
    return bf16.compare(torch.cat(fast), torch.cat(exact))


def margin_row(found: list[dict[str, float]]) -> tuple[str, str, str]:
    """The summary's line for `recheck_margin` of the trained and the weak model."""
    from sagemaker_platform.bf16 import NEAR_TIE

    def each(key: str, fmt: str) -> str:
        return " / ".join(format(m[key], fmt) for m in found)

    return (
        f"bf16 vs fp32 logits ({' / '.join(['trained', 'weak'][: len(found)])})",
        f"moved {each('worst', '.1%')} (p99 {each('p99', '.1%')}); "
        f"rechecked {each('rechecked', '.1%')}; flips {each('flips', 'd')}, "
        f"outside the {NEAR_TIE:.0%} margin {each('outside', 'd')}",
        "target: 0 outside",
    )


def rate(model, texts: list[str], bucket: bool, n: int | None = None) -> float:
    """Texts/s for tokenize + forward over `n` texts (RATE_TEXTS) in chunks of the
    model's batch size."""
    n = n or RATE_TEXTS
    batch = model.max_batch_size
    chunks = [texts[i : i + batch] for i in range(0, n, batch)]
    model.predict_proba(chunks[0], bucket=bucket)
    start = time.perf_counter()
    for chunk in chunks:
        model.predict_proba(chunk, bucket=bucket)
    return n / (time.perf_counter() - start)


def in_process(model_dir: Path, precision: str, texts: list[str]) -> dict:
    """The plain loop (input order, padded to the longest of each chunk, every padded
    token computed as transformers does) at each batch size; the best is the in-process
    limit the targets are stated against."""
    best = {"throughput": 0.0}
    for batch in (1, 8, 16, 32):
        model = padded(load(model_dir, precision, batch))
        throughput = rate(model, texts, bucket=False, n=min(48, RATE_TEXTS) if batch == 1 else None)
        print(
            f"  in-process {precision:5s} batch {batch:2d}: {throughput:6.1f} texts/s", flush=True
        )
        if throughput > best["throughput"]:
            best.update(batch=batch, throughput=throughput)
    return best


def whole_network_bf16(model_dir: Path):
    """The default precision as it was before: every parameter and activation in bf16
    (kept here to compare against, not served)."""
    import copy

    import torch

    model = padded(load(model_dir, "fp32", 16))
    model.net = copy.deepcopy(model.net).to(torch.bfloat16)
    model.pad_multiple = 16
    return model


def padded(model):
    """`model` computing as transformers does and as fp32 did before: every padded
    token, and each batch in one call on every thread (the reference and the plain
    loop, not served)."""
    model.net.backbone.skip_padding = False
    model.runtime.split_batches = False  # one call per batch, on every thread
    return model


def runtimes(model_dir: Path, work: Path, precision: str) -> tuple[dict, dict, dict]:
    """{name: predict(texts)} for the reference and the project's fp32 and default
    `precision`, the same for each peer runtime on the same network, batch 16, THREADS
    threads; and the skipped peers."""
    own = load(model_dir, "fp32", 16)
    reference = padded(load(model_dir, "fp32", 16))
    found = {
        REFERENCE: lambda t, m=reference: m.predict_proba(t, bucket=False),
        "this project, fp32": lambda t, m=own: m.predict_proba(t, bucket=False),
    }
    if precision != "fp32":
        default = load(model_dir, precision, 16)
        before = whole_network_bf16(model_dir)
        found[own_row(precision)] = lambda t, m=default: m.predict_proba(t, bucket=False)
        found["whole network cast to bf16 (the default before)"] = lambda t, m=before: (
            m.predict_proba(t, bucket=False)
        )
    others, skipped = peers.peers(own, work, THREADS)
    return found, others, skipped


def own_row(precision: str) -> str:
    """The runtimes table's row for the project at `precision`."""
    return "this project, fp32" if precision == "fp32" else f"this project, {precision} (default)"


def compare_runtimes(
    model_dir: Path,
    weak_dir: Path | None,
    work: Path,
    texts: list[str],
    held_out: list[str],
    rounds: int,
) -> tuple[dict, dict, object]:
    """Texts/s of every runtime in rounds (tokenization included; `round_order`), and
    its argmax agreement with the reference on `held_out`, for the trained model and for
    the weakly trained one (`peer` marks the other runtimes' rows). Also the trained
    model's runners and the reference's argmaxes on `held_out`. A `weak_dir` of None: the
    weak model is the trained one (the same folder), converted and scored once."""
    from sagemaker_platform.runtime import resolve_precision

    precision = resolve_precision("auto", "cpu")
    table = {}
    folders = (
        (("weak", weak_dir), ("trained", model_dir)) if weak_dir else (("trained", model_dir),)
    )
    for which, folder in folders:
        own, others, skipped = runtimes(folder, work / which, precision)
        found = {**own, **others}
        reference = peers.argmaxes(found[REFERENCE], held_out)
        for name, predict in found.items():
            row = table.setdefault(name, {"rates": [], "peer": name in others})
            row[which] = peers.argmax_agreement(predict, held_out, reference)
    if not weak_dir:
        print("  weak model: the model's own folder; its agreement is the model's")
        for row in table.values():
            row["weak"] = row["trained"]
    for name, why in skipped.items():
        print(f"  {name}: skipped, {why}")
    for i in range(rounds):  # the trained model's runners, one after another, each round
        for name in round_order(list(found), i):
            rate = peers.texts_per_second(found[name], texts, n=RATE_TEXTS)
            table[name]["rates"].append(rate)
        print(
            f"  runtimes round {i + 1}: "
            + ", ".join(f"{n} {table[n]['rates'][-1]:.1f}" for n in found)
            + " texts/s",
            flush=True,
        )
    base = statistics.median(table[REFERENCE]["rates"])
    print(
        "\nruntimes in process: same network and texts, batch 16, "
        f"{THREADS} threads, tokenization included; medians of {rounds} rounds "
        "(every other one in reverse order)"
    )
    print(f"  {'runtime':50s} {'texts/s':>8s} {'vs fp32':>8s} {'agreement':>10s} {'weak':>7s}")
    for name, row in table.items():
        row["texts_per_s"] = statistics.median(row["rates"])
        row["ratio"] = row["texts_per_s"] / base
        ratios = [r / f for r, f in zip(row["rates"], table[REFERENCE]["rates"], strict=True)]
        print(
            f"  {name:50s} {row['texts_per_s']:8.1f} {row['ratio']:8.2f} "
            f"{row['trained']:10.3f} {row['weak']:7.3f}   (rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )
    return table, found, reference


def round_order(names: list[str], i: int) -> list[str]:
    """The runners of round `i` in the order they run: the table's in even rounds, the
    reverse in odd ones, as ab_serve.py alternates A and B. A runner's place in a round
    (what ran just before it, how far the machine drifted since the default's turn) then
    weighs on the default and on each peer alike."""
    return names if i % 2 == 0 else names[::-1]


def pick_peers(table: dict) -> tuple[str | None, str | None]:
    """The peers the summary compares the default against: the fastest runtime in the
    table whatever its answers (the target: what a user choosing a runtime compares),
    and the fastest faithful one, whose argmaxes agree with fp32's on at least FIDELITY
    of the held-out texts for the trained model and the weak one (shown beside it)."""
    rows = {n: row for n, row in table.items() if row["peer"]}
    faithful = [n for n, row in rows.items() if min(row["trained"], row["weak"]) >= FIDELITY]

    def speed(name: str) -> float:
        return rows[name]["texts_per_s"]

    return max(rows, key=speed, default=None), max(faithful, key=speed, default=None)


def peer_rows(table: dict, default: str, names: dict, served_spread) -> list[tuple]:
    """The summary's rows for the default against each of `names` ({"fastest": name,
    "faithful": name}, either None where no peer ran): in process, paired per round of
    the runtimes table, and served c=16 against the peer measured beside it in process
    (`served_spread(key)`)."""
    rows = []
    for key, name in names.items():
        if not name:
            continue
        row = table[name]
        paired = [
            own / peer
            for own, peer in zip(table[own_row(default)]["rates"], row["rates"], strict=True)
        ]
        label = "fastest runtime" if key == "fastest" else "fastest faithful peer"
        note = (
            "target >= 1.0"
            if key == "fastest"
            else f"beside it: agreement >= {FIDELITY} on both models"
        )
        rows += [
            (
                f"in-process default ({default}) / {label} ({name}, "
                f"agreement {row['trained']:.3f} / {row['weak']:.3f})",
                f"{statistics.median(paired):.3f} (rounds {min(paired):.3f}-{max(paired):.3f})",
                note,
            ),
            (f"served default ({default}) c=16 / {label} in process", served_spread(key), note),
        ]
    return rows


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


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, once it has exited)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_wrk(url: str, script: Path, concurrency: int, seconds: int) -> dict:
    """wrk's figures, and the cores wrk itself kept busy (`client_cores`): the load
    generator runs on the server's cores, and what it takes is not the server's."""
    cpu_before, started = children_cpu(), time.perf_counter()
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
    client_cores = (children_cpu() - cpu_before) / (time.perf_counter() - started)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(percentiles) != 2:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "errors": int(errors.group(1)) if errors else 0,
        "client_cores": client_cores,
    }


def served(
    base: Path,
    precision: str,
    script: Path,
    sent: list[str],
    texts: list[str],
    models: tuple,
    seconds: int,
    rounds: int,
) -> dict:
    """`rounds` of: the in-process batch-1 latency on the texts wrk sends (`sent`, what
    `script` posts), then served c=1
    on them; then `rounds` of: the in-process fp32 limit, this precision in process
    with the server's length bucketing, and served c=16, one after another, so that each
    served figure has a limit measured beside it. The machine's speed drifts by several
    percent from minute to minute; paired ratios and their median stand still.
    `models` is (the fp32 limit's model, this precision's, {key: a peer's predict}): each
    peer is measured in process in every c=16 round too, its texts/s under `key`."""
    limit_model, own_model, peer_runs = models
    env = {**SERVER_ENV, "MODEL_SERVER_PRECISION": precision}
    with helpers.Server(base, env=env) as srv:
        srv.wait_ready(300)
        setup = re.search(r"workers=\S+ threads=\S+ shared_cores=\S+", srv.output())
        print(f"  server: {setup.group(0) if setup else '?'}", flush=True)
        run_wrk(srv.url, script, 16, min(2, seconds))  # warm the connections and every worker
        result = {"c1": [], "rounds": []}
        for i in range(rounds):
            one = peers.batch1_ms(lambda t: own_model.predict_proba(t, bucket=False), sent[:32])
            r = {"batch1_ms": one}
            r.update(run_wrk(srv.url, script, 1, max(1, seconds // 4)))
            result["c1"].append(r)
            print(
                f"  c=1 round {i + 1}: in-process {precision} batch 1 p50 "
                f"{r['batch1_ms']:.1f} ms; served {r['rps']:6.1f} req/s, p50 "
                f"{r['p50_ms']:.1f} ms ({r['p50_ms'] - r['batch1_ms']:+.1f}), "
                f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}",
                flush=True,
            )
        for i in range(rounds):
            row = {
                "limit": rate(limit_model, texts, bucket=False),
                "bucketed": rate(own_model, texts, bucket=True),
                **{
                    key: peers.texts_per_second(p, texts, n=RATE_TEXTS)
                    for key, p in peer_runs.items()
                },
                **run_wrk(srv.url, script, 16, seconds),
            }
            result["rounds"].append(row)
            print(
                f"  round {i + 1}: in-process fp32 limit {row['limit']:6.1f}/s, "
                f"in-process {precision} bucketed {row['bucketed']:6.1f}/s, "
                + "".join(f"{key} {row[key]:6.1f}/s, " for key in peer_runs)
                + f"served c=16 {row['rps']:6.1f} req/s (p50 {row['p50_ms']:.0f} ms, "
                f"p99 {row['p99_ms']:.0f} ms, errors {row['errors']}, "
                f"wrk {row['client_cores']:.2f} cores)  "
                f"ratio {row['rps'] / row['limit']:.3f}",
                flush=True,
            )
    return result


def cold_start(base: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with helpers.Server(base, env=SERVER_ENV) as srv:
            times.append(srv.wait_ready(120))
    return times


def same_folder(a: Path, b: Path | None) -> bool:
    """Whether `a` and `b` name one folder (the test passes its model as the weak one)."""
    return b is not None and a.resolve() == b.resolve()


def c1_spread(rounds: list[dict]) -> str:
    """Served c=1 p50 over the in-process batch-1 p50: the median of the paired rounds."""
    deltas = [r["p50_ms"] - r["batch1_ms"] for r in rounds]
    return f"{statistics.median(deltas):+.1f} (rounds {min(deltas):+.1f} to {max(deltas):+.1f})"


def median_ratio(rounds: list[dict], key: str) -> tuple[float, float, float]:
    ratios = [r["rps"] / r[key] for r in rounds]
    return statistics.median(ratios), min(ratios), max(ratios)


def main() -> None:
    global THREADS, RATE_TEXTS, SERVER_ENV
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, help="a trained model/ folder (default: train one)"
    )
    parser.add_argument("--seconds", type=int, default=8, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds per precision")
    parser.add_argument(
        "--weak-model-dir", type=Path, help="a weakly trained model/ folder (default: train one)"
    )
    parser.add_argument(
        "--runtimes-only", action="store_true", help="only the in-process runtimes table"
    )
    parser.add_argument(
        "--held-out", type=int, default=500, help="held-out texts each agreement is measured on"
    )
    parser.add_argument(
        "--rate-texts",
        type=int,
        default=RATE_TEXTS,
        help="texts per in-process throughput figure, at most 256 (batch 1: at most 48)",
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts timed")
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="threads of the in-process runtimes (default: every usable core)",
    )
    parser.add_argument(
        "--workers", type=int, help="MODEL_SERVER_WORKERS of every server (default: auto)"
    )
    parser.add_argument(
        "--server-threads", type=int, help="MODEL_SERVER_THREADS of every server (default: auto)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    for name in ("held_out", "rate_texts", "cold_starts", "threads", "rounds", "seconds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: at least 1")
    if args.rate_texts > 256:
        parser.error("--rate-texts: at most 256 (the texts measured on)")
    THREADS, RATE_TEXTS = args.threads, args.rate_texts
    for var, value in (("WORKERS", args.workers), ("THREADS", args.server_threads)):
        if value:
            SERVER_ENV[f"MODEL_SERVER_{var}"] = str(value)

    with tempfile.TemporaryDirectory(prefix="bench-serve-", ignore_cleanup_errors=True) as tmp:
        measure(args, Path(tmp))


def measure(args: argparse.Namespace, work: Path) -> None:
    """Every figure, with the models and scripts under `work` (`main` removes it)."""
    import torch

    from sagemaker_platform import allocator
    from sagemaker_platform.cpu_bf16 import cpu_bf16_speedup
    from sagemaker_platform.runtime import resolve_precision

    # As a worker serving the default precision does (`Runtime.resolve`), before any
    # runtime runs: every row of the table is measured under the same process-wide
    # malloc settings.
    default = resolve_precision("auto", "cpu")
    kept = allocator.for_serving("cpu", default)

    base = work / "opt_ml"
    if args.model_dir:
        shutil.copytree(args.model_dir, base / "model")
    else:
        train_model(base)
    model_dir = base / "model"
    texts = long_texts(256, seed=11)
    held_out = long_texts(args.held_out, seed=12)
    spec = json.loads((model_dir / "preprocessing.json").read_text())
    print(
        f"model {model_dir} max_length={spec['max_length']} "
        f"texts ~{int(statistics.mean(map(len, texts)))} chars; "
        f"torch {torch.__version__}, {THREADS} cores; "
        f"malloc keeps freed memory: {'yes' if kept else 'no'} (every runtime); "
        f"default precision {default} (bf16 matmul / fp32 measured {cpu_bf16_speedup():.2f}x)",
        flush=True,
    )

    weak_dir: Path | None = work / "weak" / "opt_ml" / "model"
    if args.weak_model_dir and same_folder(args.weak_model_dir, args.model_dir):
        weak_dir = None  # the same model: converted and scored once
    elif args.weak_model_dir:
        shutil.copytree(args.weak_model_dir, weak_dir)
    else:
        train_model(work / "weak" / "opt_ml", weak=True)
    table, found, reference = compare_runtimes(
        model_dir, weak_dir, work / "peers", texts, held_out, args.rounds
    )
    if args.runtimes_only:
        return
    # int8 (opt-in) against the same reference as the table (the trained model's).
    int8 = load(model_dir, "int8", 16)
    agree = {
        "int8": peers.argmax_agreement(
            lambda t: int8.predict_proba(t, bucket=False), held_out, reference
        )
    }
    margins = [recheck_margin(d, held_out) for d in (model_dir, weak_dir) if d is not None]
    default_row = table[own_row(default)]
    agree[default] = default_row["trained"]
    fastest, faithful = pick_peers(table)
    # One row where the fastest runtime is also the fastest faithful one.
    peer_names = {"fastest": fastest, "faithful": faithful if faithful != fastest else None}
    peer_runs = {key: found[name] for key, name in peer_names.items() if name}
    precisions = ["fp32"] + ([default] if default != "fp32" else [])
    limit = {p: in_process(model_dir, p, texts) for p in precisions}
    fp32_limit = padded(load(model_dir, "fp32", limit["fp32"]["batch"]))
    sent = random.Random(0).sample(texts, 64)
    script = wrk_script(sent, work / "post.lua")
    runs = {}
    for p in precisions:
        own = load(model_dir, p, limit[p]["batch"])  # the server's model, in process
        measured = peer_runs if p == default else {}
        runs[p] = served(
            base, p, script, sent, texts, (fp32_limit, own, measured), args.seconds, args.rounds
        )
    starts = cold_start(base, args.cold_starts)
    print(f"  cold start (serve start -> /ping 200): {', '.join(f'{t:.2f}' for t in starts)} s")

    def spread(p: str, key: str) -> str:
        mid, lo, hi = median_ratio(runs[p]["rounds"], key)
        return f"{mid:.3f} (rounds {lo:.3f}-{hi:.3f})"

    limit_rounds = [r["limit"] for p in precisions for r in runs[p]["rounds"]]
    rows = [
        (
            "in-process fp32 limit (texts/s)",
            f"{statistics.median(limit_rounds):.1f}",
            f"batch {limit['fp32']['batch']}, plain loop, median of all rounds",
        ),
        ("served fp32 c=16 / in-process fp32 limit", spread("fp32", "limit"), "target >= 1.0"),
        (
            "served fp32 c=16 / in-process fp32 with bucketing",
            spread("fp32", "bucketed"),
            "the server's model in one process",
        ),
    ]
    if default != "fp32":
        rows.append(
            (
                f"served default ({default}) c=16 / in-process fp32 limit",
                spread(default, "limit"),
                "target >= 1.8",
            )
        )
    for p in precisions:
        rows.append(
            (
                f"served {p} p50 c=1 - in-process {p} batch-1 (ms)",
                c1_spread(runs[p]["c1"]),
                "target <= 3",
            )
        )
    rows += [
        ("cold start median (s)", f"{statistics.median(starts):.2f}", "target < 4"),
        (
            f"default ({default}) argmax agreement with fp32",
            f"{agree[default]:.3f} (weak model {default_row['weak']:.3f})",
            f"target >= {FIDELITY}",
        ),
        ("int8 argmax agreement with fp32", f"{agree['int8']:.3f}", "opt-in only"),
    ]
    rows.append(margin_row(margins))
    client = [r["client_cores"] for r in runs[default]["rounds"]]
    rows.append(
        (
            "wrk's own CPU at c=16 (cores)",
            f"{statistics.median(client):.2f} of {THREADS}",
            f"the load generator, on the server's cores ({default} rounds)",
        )
    )
    rows[1:1] = peer_rows(table, default, peer_names, lambda key: spread(default, key))
    print("\nsummary (ratios: median of paired rounds)")
    for name, value, note in rows:
        print(f"  {name:52s} {value:>26s}   {note}")


if __name__ == "__main__":
    main()
