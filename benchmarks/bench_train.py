#!/usr/bin/env python3
"""Training throughput: the `train` entry point against a bare PyTorch loop.

    python benchmarks/bench_train.py [--backbone DIR] [--rows 640] [--batch-size 16]
                                     [--max-length 128] [--repeats 3] [--threads 1]
                                     [--strict]
    python benchmarks/bench_train.py --compare-precision [--threads 1,2] [--repeats 3]
                                     [--plugins text_classifier,tabular,image_classifier]
                                     [--real-text [--seeds 42,7]] [--json FILE]

Both sides fine-tune the same model (the packaged MiniLM unless --backbone) on the same
rows of the sample data for one epoch, each in a fresh process, with the same batch
size, max_length, precision (fp32), batches (the DataModule's training loader: seeded
length-grouped order, text.TextEncoder), loss (class-weighted cross-entropy), optimizer
and schedule (optim.build), seed, device and threads:

  bare   a plain torch loop: DataLoader -> forward -> loss -> backward ->
         optimizer.step -> scheduler.step -> zero_grad. The bare worker reads its
         settings and data through the entry point's own `training.prepare()`.
  entry  `model/train` on the same job tree with validation off
         (validation_fraction=0); its figure is `train_samples_per_sec` from
         output/data/metrics.json.

Both are clocked alike: from before the epoch's DataLoader iterator is created to the
end of its last step, fetching and tokenizing batches included. For the entry point the
LogLines callback keeps that clock, so everything Lightning does per training step is
inside it (hooks, logging, callbacks, optimizer and scheduler steps); process start,
model loading, Trainer setup and the checkpoint written after the epoch are outside it,
as they are outside the bare figure. The whole-fit figure (train_rows / train_seconds)
is printed beside it for reference. Each side is also measured per CPU second of its
process over the same spans (`train_step_cpu_seconds` in metrics.json): with one thread
that is close to what the steps take on a machine of their own, so on a busy machine it
is the steadier comparison (waiting for a core counts in wall-clock time only).

Runs alternate (bare, entry, bare, entry, ...) so that a busy machine slows both alike.
Both sides run one torch thread unless --threads says otherwise: with one thread per
core, a core taken by another process stalls every OpenMP barrier, and on a shared
machine that noise (figures varying 3x between identical runs) would decide the ratio.
Issue 3 asks for median(entry) / median(bare) >= 0.95. With one thread on the CPU the
verdict takes the per-CPU-second medians (each run also prints how often the OS
preempted it); with more threads or on a GPU, the wall-clock medians. The verdict is
printed; the exit status is 0 either way unless --strict.

--compare-precision measures the entry point in fp32 (`precision=32`) against
bf16-mixed (Lightning's autocast; what `precision=auto` chooses on a GPU with bf16, and
on a CPU with bf16 units for a plug-in that sets `Plugin.bf16_on_cpu`), in one run:

  speed     for each --threads value, --repeats alternating runs per precision (fp32,
            bf16, fp32, ...) on the job above; medians, wall clock and per CPU second,
            and bf16/fp32 ratios. The mean train loss of each run is printed beside.
  sample    each --plugins plug-in's sample job (its demo data and hyperparameters,
            --sample-rows train rows and a quarter as many in validation) once per
            precision, with all cores: metrics.json's validation figures and speed.
  real text with --real-text, the fortunes set of eval_defaults.py (one split) trained
            with the defaults in each precision for each of --seeds (the training seed,
            so fp32's seed-to-seed spread is the run-to-run noise), one torch thread per
            run (the first of --threads), scored on the held-out test set in fp32.
            Quality holds when bf16's mean macro-F1 is at most that noise (never less
            than 0.03, what one split resolves) below fp32's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "model"))

from sagemaker_platform import contract  # noqa: E402
from tests import helpers  # noqa: E402

THRESHOLD = 0.95


# --- the bare loop (runs in its own process: `--bare-worker BASE`) --------------------
def bare_worker(base: Path) -> dict:
    """One epoch of a plain PyTorch loop over the job at `base`; returns its figures."""
    os.environ[contract.BASE_DIR_ENV] = str(base)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as the entry point sets it
    from sagemaker_platform import training

    prepared = training.prepare()  # the entry point's config and data path
    settings_, cfg = prepared.job.settings, prepared.job.hp
    splits, backbone = prepared.rows.splits, prepared.rows.backbone
    if settings_.gradient_accumulation != 1 or settings_.precision not in ("32", "32-true"):
        raise SystemExit("the bare loop runs fp32 without gradient accumulation")

    import torch
    from torch import nn

    from plugins.text_classifier import network, optim
    from plugins.text_classifier.lightning_module import TextDataModule
    from plugins.text_classifier.text import TextEncoder, tokenizer_for_backbone
    from sagemaker_platform.splitting import class_weights

    torch.manual_seed(settings_.seed)
    tokenizer, settings = tokenizer_for_backbone(backbone, cfg.max_length)
    net = network.from_pretrained(backbone, splits.num_classes, cfg.pooling, cfg.dropout)
    weights = class_weights(splits.train_labels, splits.num_classes)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32) if cfg.class_weighting else None
    )
    # The DataModule's own training loader (the only Lightning object here): the same
    # seeded, length-grouped order and collate as the entry point's.
    loader = TextDataModule(
        splits,
        TextEncoder(tokenizer, settings),
        settings_.batch_size,
        settings_.num_workers,
        cfg.group_by_length,
        settings_.seed,
    ).train_dataloader()
    optimizer, scheduler = optim.build(
        net,
        learning_rate=cfg.learning_rate,
        head_learning_rate=cfg.head_learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        total_steps=len(loader) * settings_.epochs,
    )
    # The device the entry point's accelerator="auto" picks: a GPU if there is one.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device).train()
    loss_fn.to(device)
    samples, loss_sum = 0, torch.zeros((), device=device)
    started, started_cpu = time.perf_counter(), time.process_time()
    for epoch in range(settings_.epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)  # as Lightning does at every epoch start
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            logits = net(batch["input_ids"], batch["attention_mask"])
            loss = loss_fn(logits.float(), batch["labels"])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            n = len(batch["labels"])
            samples += n
            loss_sum += loss.detach() * n  # as Lightning's epoch-mean train_loss does
    if device.type == "cuda":
        torch.cuda.synchronize()  # finished, not merely queued (LogLines does the same)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - started_cpu
    return {
        "device": device.type,
        "samples_per_sec": samples / seconds,
        "samples_per_cpu_sec": samples / cpu_seconds,
        "samples": samples,
        "seconds": seconds,
        "mean_loss": loss_sum.item() / samples,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


# --- the driver ------------------------------------------------------------------------
def write_job(base: Path, args, precision: str = "32") -> Path:
    hyperparameters = {
        "backbone": str(args.backbone),
        "epochs": "1",
        "batch_size": str(args.batch_size),
        "max_length": str(args.max_length),
        "validation_fraction": "0",
        "precision": precision,
    }
    return helpers.write_sample_job(base, hyperparameters, n_train=args.rows, n_val=0)


def thread_env(threads: int) -> dict[str, str]:
    """The same intra-op thread count for both sides (0: torch's default)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}


def preemptions(run):
    """`run()`'s result and how often the OS took the CPU from the child it waited for
    (involuntary context switches): how much other load got in the way."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw
    result = run()
    return result, resource.getrusage(resource.RUSAGE_CHILDREN).ru_nivcsw - before


def run_bare(base: Path, threads: int) -> dict:
    result, preempted = preemptions(
        lambda: subprocess.run(
            [sys.executable, __file__, "--bare-worker", str(base)],
            env=helpers.subprocess_env(base, thread_env(threads)),
            capture_output=True,
            text=True,
            timeout=600,
        )
    )
    if result.returncode != 0:
        raise SystemExit(f"bare loop failed:\n{result.stdout}\n{result.stderr}")
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "preempted": preempted}


def run_entry(base: Path, threads: int) -> dict:
    result, preempted = preemptions(
        lambda: helpers.run_entry("train", base, timeout=600, env=thread_env(threads))
    )
    if result.returncode != 0:
        raise SystemExit(f"train entry point failed:\n{result.stdout}\n{result.stderr}")
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    threads = loss = device = precision = None
    for line in result.stdout.splitlines():
        if " train: fit " in line:
            fit = dict(kv.split("=", 1) for kv in line.split(" train: fit ", 1)[1].split())
            threads = int(fit["torch_threads"])
            device = "cuda" if "CUDA" in fit["accelerator"] else "cpu"
            precision = fit["precision"]
        if " train: epoch=1 train_loss=" in line:
            loss = float(line.split("train_loss=")[1].split()[0])
    return {
        "preempted": preempted,
        "device": device,
        "mean_loss": loss,
        "samples_per_sec": metrics["train_samples_per_sec"],
        "samples_per_cpu_sec": metrics["train_rows"]
        * metrics["epochs_run"]
        / metrics["train_step_cpu_seconds"],
        "whole_fit_samples_per_sec": metrics["train_rows"]
        * metrics["epochs_run"]
        / metrics["train_seconds"],
        "torch_threads": threads,
        "precision": precision,
        "metrics_precision": metrics.get("precision"),
    }


def cpu_model() -> str:
    """The CPU's model name and the flags that decide bf16: avx512_bf16, amx_bf16."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line),
        platform.machine(),
    )
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "").split()
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} [{' '.join(bf16) or 'no bf16 units'}{'' if 'avx2' in flags else ', no avx2'}]"


def environment() -> str:
    import lightning
    import torch

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu_model()}, {cores} cores ({usable} usable), "
        f"load average {load}; python {platform.python_version()}, torch {torch.__version__}, "
        f"lightning {lightning.__version__}"
    )


# --- --compare-precision: fp32 against bf16-mixed -------------------------------------
PRECISIONS = {"fp32": "32", "bf16": "bf16-mixed"}  # label -> the `precision` hyperparameter
HOLDS_FLOOR = 0.03  # the macro-F1 difference one fortunes split cannot resolve (one seed)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def compare_speed(tmp: Path, args, threads: int) -> dict[str, dict[str, float]]:
    """`--repeats` alternating entry-point runs per precision (fp32, bf16, fp32, ...),
    same rows and threads; the medians of each."""
    runs: dict[str, list[dict]] = {label: [] for label in PRECISIONS}
    for i in range(1, args.repeats + 1):
        for label, precision in PRECISIONS.items():
            r = run_entry(write_job(tmp / f"t{threads}-{label}{i}", args, precision), threads)
            if r["precision"] != ("32-true" if precision == "32" else precision):
                raise SystemExit(f"asked for precision={precision}, the job ran {r['precision']}")
            runs[label].append(r)
            print(
                f"  run {i}  {label:<5}  {r['samples_per_sec']:7.2f} samples/s"
                f"   {r['samples_per_cpu_sec']:7.2f} samples/s   ({r['device']}, "
                f"{r['precision']}, torch threads {r['torch_threads']}, preempted "
                f"{r['preempted']}x, mean train loss {r['mean_loss']:.4f})",
                flush=True,
            )
    median = {
        label: {
            key: statistics.median(r[key] for r in runs[label])
            for key in ("samples_per_sec", "samples_per_cpu_sec", "mean_loss")
        }
        for label in runs
    }
    for label in runs:
        print(
            f"  median {label:<5}  {median[label]['samples_per_sec']:7.2f} samples/s"
            f"   {median[label]['samples_per_cpu_sec']:7.2f} samples/s"
        )
    wall = ratio(median["bf16"]["samples_per_sec"], median["fp32"]["samples_per_sec"])
    cpu = ratio(median["bf16"]["samples_per_cpu_sec"], median["fp32"]["samples_per_cpu_sec"])
    print(f"  ratio bf16/fp32  {wall:7.3f}             {cpu:7.3f}")
    return {**median, "ratio": {"wall": wall, "cpu": cpu}}


def val_figures(metrics: dict) -> dict[str, float]:
    """metrics.json's top-level validation figures (val_accuracy, val_f1, val_rmse...)."""
    return {
        k: v
        for k, v in metrics.items()
        if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def compare_sample_job(tmp: Path, args, plugin: str) -> dict[str, dict]:
    """The plug-in's sample job (its demo data and hyperparameters, as `make demo` trains
    it) once per precision, with all cores: its validation figures and speed."""
    from local_test import make_sample_data

    params = dict(make_sample_data.sample_module(plugin).HYPERPARAMETERS)
    if plugin == "text_classifier":
        params["backbone"] = str(args.backbone)
    out = {}
    for label, precision in PRECISIONS.items():
        base = make_sample_data.write_job(
            tmp / f"sample-{plugin}-{label}",
            {**params, "precision": precision},
            n_train=args.sample_rows,
            n_val=max(1, args.sample_rows // 4),
            model=plugin,
        )
        done = helpers.run_entry("train", base, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"{plugin} sample job ({label}) failed:\n{done.stdout}\n{done.stderr}")
        metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
        out[label] = {
            "precision": metrics["precision"],
            "val": val_figures(metrics),
            "best_epoch": metrics["best_epoch"],
            "samples_per_sec": metrics["train_samples_per_sec"],
            "samples_per_cpu_sec": ratio(
                metrics["train_rows"] * metrics["epochs_run"], metrics["train_step_cpu_seconds"]
            ),
        }
        val = " ".join(f"{k} {v:.4f}" for k, v in out[label]["val"].items())
        print(
            f"  {plugin:<16} {label:<5} {val}; best epoch {metrics['best_epoch']}; "
            f"{out[label]['samples_per_sec']:.1f} samples/s, "
            f"{out[label]['samples_per_cpu_sec']:.1f} per CPU s ({metrics['precision']})",
            flush=True,
        )
    print(
        f"  {plugin:<16} bf16/fp32 speed {ratio(out['bf16']['samples_per_sec'], out['fp32']['samples_per_sec']):.3f}"
        f" wall, {ratio(out['bf16']['samples_per_cpu_sec'], out['fp32']['samples_per_cpu_sec']):.3f} per CPU s"
    )
    return out


def compare_real_text(work: Path, args) -> dict:
    """The fortunes set of eval_defaults (one split), trained with the defaults in each
    precision for each training seed, scored on the held-out test set in fp32; torch
    threads the first of --threads."""
    threads = args.threads[0]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import eval_defaults
    import real_data

    train, validation, test = args.real_text_rows
    summary = real_data.build(work / "data", 0, train, validation, test)
    print(f"  data: {summary['source']}, rows {summary['rows']}")
    results: dict[str, list[dict]] = {label: [] for label in PRECISIONS}
    ordered = []
    for seed in args.seeds:  # fp32 then bf16 for each seed: the machine's drift hits both
        for label, precision in PRECISIONS.items():
            params = {**args.real_text_params, "precision": precision, "seed": str(seed)}
            r = eval_defaults.train_one(
                f"{label}-seed{seed}", params, work / "data", work, 3600, thread_env(threads)
            )
            if r["precision"] != ("32-true" if precision == "32" else precision):
                raise SystemExit(f"asked for precision={precision}, the job ran {r['precision']}")
            results[label].append(r)
            ordered.append(r)
            shutil.rmtree(work / "runs" / f"{label}-seed{seed}", ignore_errors=True)
    print(eval_defaults.table(ordered))
    f1 = {label: [r["test_macro_f1"] for r in rs] for label, rs in results.items()}
    acc = {label: [r["test_accuracy"] for r in rs] for label, rs in results.items()}
    mean = {label: statistics.mean(v) for label, v in f1.items()}
    # Run-to-run noise: fp32's own spread over the training seeds (one split), never
    # below what one split resolves at all.
    spread = max(f1["fp32"]) - min(f1["fp32"])
    noise = max(spread, HOLDS_FLOOR)
    holds = mean["bf16"] >= mean["fp32"] - noise
    cpu = {label: sum(r["cpu_seconds"] for r in rs) for label, rs in results.items()}
    print(
        f"  macro-F1 fp32 {' '.join(f'{x:.3f}' for x in f1['fp32'])} (mean {mean['fp32']:.3f}), "
        f"bf16 {' '.join(f'{x:.3f}' for x in f1['bf16'])} (mean {mean['bf16']:.3f}); "
        f"accuracy fp32 {statistics.mean(acc['fp32']):.3f}, bf16 {statistics.mean(acc['bf16']):.3f}"
    )
    print(
        f"  quality {'HOLDS' if holds else 'DOES NOT HOLD'}: bf16 mean macro-F1 "
        f"{mean['bf16'] - mean['fp32']:+.3f} against fp32; the noise is fp32's seed-to-seed "
        f"spread {spread:.3f} (at least {HOLDS_FLOOR}) -> allowed -{noise:.3f}"
    )
    print(f"  training CPU seconds (whole process) bf16/fp32 {ratio(cpu['bf16'], cpu['fp32']):.3f}")
    return {"results": results, "holds": holds, "noise": noise}


def compare_precision(args) -> int:
    """Speed (alternating entry-point runs, per thread count), then quality (the sample
    jobs, and the fortunes set with --real-text), fp32 against bf16-mixed, in one run."""
    print("training in fp32 against bf16-mixed (Lightning's autocast), the `train` entry point")
    print(f"  machine   {environment()}")
    report: dict = {"machine": environment()}
    with tempfile.TemporaryDirectory(prefix="bench_precision_") as tmp:
        for threads in args.threads if args.repeats else []:
            steps = -(-args.rows // args.batch_size)
            print(
                f"speed: {args.rows} rows = {steps} steps of batch {args.batch_size}, "
                f"max_length {args.max_length}, 1 epoch, no validation, torch threads "
                f"{threads or 'default'}"
            )
            print("                 wall clock         per CPU second")
            report[f"speed_threads_{threads}"] = compare_speed(Path(tmp), args, threads)
        if args.plugins:
            print(f"quality: each plug-in's sample job ({args.sample_rows} train rows)")
        for plugin in args.plugins:
            report[f"sample_{plugin}"] = compare_sample_job(Path(tmp), args, plugin)
        if args.real_text:
            print(
                f"quality: real text (fortunes), training seeds {args.seeds}, torch threads "
                f"{args.threads[0] or 'default'}"
            )
            report["real_text"] = compare_real_text(Path(tmp) / "real_text", args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print("summary (bf16-mixed / fp32):")
    for threads in args.threads if args.repeats else []:
        r = report[f"speed_threads_{threads}"]["ratio"]
        print(
            f"  speed, torch threads {threads or 'default'}: {r['wall']:.3f} wall clock, "
            f"{r['cpu']:.3f} per CPU second"
        )
    if args.real_text:
        print(f"  real-text quality holds: {report['real_text']['holds']}")
    return 0


def int_list(value: str) -> list[int]:
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected integers, comma-separated") from None


def key_values(value: str) -> dict[str, str]:
    pairs = [item.partition("=") for item in value.split(",") if item.strip()]
    if any(not eq for _, eq, _ in pairs):
        raise argparse.ArgumentTypeError(f"{value!r}: expected k=v,k=v")
    return {k.strip(): v.strip() for k, _, v in pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", type=Path, default=None, help="model folder (MiniLM)")
    parser.add_argument("--rows", type=int, default=640, help="training rows (one epoch)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="bare/entry pairs")
    parser.add_argument(
        "--threads",
        type=int_list,
        default=[1],
        help="torch threads on both sides; 0 is torch's default (one per core). 1 by "
        "default: on a shared machine, other load stalls multi-thread OpenMP barriers "
        "and that noise, not the code, would decide the ratio. With --compare-precision "
        "a list (1,2) measures each in turn",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when the ratio fails")
    parser.add_argument(
        "--compare-precision",
        action="store_true",
        help="instead of entry vs bare: the entry point in fp32 against bf16-mixed, speed "
        "(alternating runs, --repeats pairs per thread count) and quality (the sample jobs "
        "of --plugins; the fortunes set with --real-text)",
    )
    parser.add_argument(
        "--plugins",
        type=lambda v: [x for x in v.split(",") if x],
        default=["text_classifier"],
        help="--compare-precision: plug-ins whose sample job trains in both precisions "
        "(comma-separated; empty for none)",
    )
    parser.add_argument("--sample-rows", type=int, default=320, help="sample jobs' train rows")
    parser.add_argument(
        "--real-text", action="store_true", help="--compare-precision: also the fortunes set"
    )
    parser.add_argument(
        "--real-text-rows", type=int_list, default=[400, 100, 400], help="train,validation,test"
    )
    parser.add_argument(
        "--real-text-params",
        type=key_values,
        default={},
        help="k=v,k=v hyperparameters added to the defaults (tests: a tiny backbone)",
    )
    parser.add_argument(
        "--seeds", type=int_list, default=[42], help="training seeds of the real-text runs"
    )
    parser.add_argument("--json", type=Path, help="--compare-precision: write the figures here")
    parser.add_argument("--bare-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.bare_worker:
        print(json.dumps(bare_worker(args.bare_worker)))
        return 0

    args.backbone = (args.backbone or helpers.minilm_dir()).resolve()
    if args.compare_precision:
        if len(args.real_text_rows) != 3:
            parser.error("--real-text-rows: expected train,validation,test")
        return compare_precision(args)
    if len(args.threads) != 1:
        parser.error("--threads: one value (a list only with --compare-precision)")
    args.threads = args.threads[0]
    steps = -(-args.rows // args.batch_size)
    print("training throughput: the `train` entry point vs a bare PyTorch loop")
    print(
        f"  setup     backbone {args.backbone}\n"
        f"            {args.rows} rows = {steps} steps of batch {args.batch_size}, "
        f"max_length {args.max_length}, fp32, 1 epoch, no validation, "
        f"torch threads {args.threads or 'default'}"
    )
    print(f"  machine   {environment()}")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(
            "  note      the machine is busy: figures will be noisy; interleaved runs and "
            "medians help"
        )
    print("                 wall clock         per CPU second")
    runs: dict[str, list[dict]] = {"bare": [], "entry": []}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        for i in range(1, args.repeats + 1):
            for side, run in (("bare", run_bare), ("entry", run_entry)):
                r = run(write_job(Path(tmp) / f"{side}{i}", args), args.threads)
                runs[side].append(r)
                extra = (
                    f"{r['device']}, torch threads {r['torch_threads']}, "
                    f"preempted {r['preempted']}x, mean train loss {r['mean_loss']:.4f}"
                )
                if side == "entry":
                    extra += f"; whole fit {r['whole_fit_samples_per_sec']:.2f} samples/s"
                print(
                    f"  run {i}  {side:<5}  {r['samples_per_sec']:7.2f} samples/s"
                    f"   {r['samples_per_cpu_sec']:7.2f} samples/s   ({extra})",
                    flush=True,
                )
    median = {
        (side, key): statistics.median(r[key] for r in runs[side])
        for side in runs
        for key in ("samples_per_sec", "samples_per_cpu_sec")
    }
    for side in runs:
        print(
            f"  median {side:<5}  {median[side, 'samples_per_sec']:7.2f} samples/s"
            f"   {median[side, 'samples_per_cpu_sec']:7.2f} samples/s"
        )
    wall = median["entry", "samples_per_sec"] / median["bare", "samples_per_sec"]
    cpu = median["entry", "samples_per_cpu_sec"] / median["bare", "samples_per_cpu_sec"]
    print(f"  ratio entry/bare  {wall:7.3f}             {cpu:7.3f}")
    # With one thread on the CPU, a step's CPU time is its wall time minus the time other
    # processes held the core: the figure the code earns on a machine of its own. With
    # more threads or a GPU, CPU time stops measuring the step, and only the wall clock
    # can decide.
    one_cpu_thread = args.threads == 1 and all(
        r["device"] == "cpu" for side in runs for r in runs[side]
    )
    ratio, clock = (cpu, "CPU time") if one_cpu_thread else (wall, "the wall clock")
    verdict = "PASS" if ratio >= THRESHOLD else "FAIL"
    print(f"  {verdict}: entry/bare {ratio:.3f} by {clock} (needs >= {THRESHOLD})")
    if one_cpu_thread:
        print(
            "        (one thread on the CPU: the CPU-time figure is the step time without "
            "other processes' preemptions; the wall clock counts those too)"
        )
    return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
