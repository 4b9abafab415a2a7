#!/usr/bin/env python3
"""Do the default hyperparameters train well on small real data? Defaults vs a plain fine-tune.

    python3 benchmarks/eval_defaults.py [--work DIR] [--seed 0] [--config NAME:k=v,k=v ...]

Builds the fortunes set (benchmarks/real_data.py: six topics, 400 train / 100 validation
/ 400 held-out test rows, imbalanced), then for each configuration runs `model/train` as
a subprocess, exactly as the image runs it, and scores the `model/` it leaves on the
held-out test set through serving's loading path (`artifacts.load_network` and
`text.encode`), so the score is that of the artifact a SageMaker endpoint would serve.

Without --config it compares two configurations on the same split:

    defaults  hyperparameters.json is {}: TrainConfig's defaults, as a user gets them
    plain     the textbook fine-tune: unweighted loss, [CLS] pooling, one learning rate
              of 2e-5, no warm-up, 128 tokens, random batches; same epochs, patience
              and batch size

and prints macro-F1 (the headline: the classes are imbalanced), accuracy, training
time and epochs for each, side by side, and the ratio of the two. With --config NAME:
OVERRIDES (repeatable; OVERRIDES is k=v,k=v, empty for the defaults) it runs those
instead, which is how the table in benchmarks/RESULTS-defaults.md was made.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_data  # noqa: E402

from tests import helpers  # noqa: E402  (puts model/ on sys.path)

PLAIN = {
    "class_weighting": "false",
    "pooling": "cls",
    "learning_rate": "2e-5",
    "head_learning_rate": "2e-5",
    "warmup_ratio": "0",
    "max_length": "128",
    "group_by_length": "false",
}


def default_configs() -> dict[str, dict[str, str]]:
    from sagemaker_platform.config import TrainSettings

    same = {k: str(getattr(TrainSettings(), k)) for k in ("epochs", "early_stopping_patience")}
    same["batch_size"] = str(TrainSettings().batch_size)
    return {"defaults": {}, "plain": {**PLAIN, **same}}


def parse_config(spec: str) -> tuple[str, dict[str, str]]:
    name, _, overrides = spec.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"--config {spec!r}: expected NAME:k=v,k=v")
    params = {}
    for item in filter(None, (s.strip() for s in overrides.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"--config {spec!r}: {item!r} is not k=v")
        params[key.strip()] = value.strip()
    return name, params


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    import pandas as pd

    frame = pd.read_csv(path)
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist()


def score(model_dir: Path, texts: list[str], labels: list[str], batch_size: int = 32) -> dict:
    """Held-out metrics of a trained model/, loaded and run exactly as serving does
    (fp32, so that the figure is the model's, not the serving precision's)."""
    import numpy as np

    from sagemaker_platform import evaluation

    model = helpers.text_model(model_dir, "fp32", "cpu", max_batch_size=batch_size)
    index = {str(name): i for i, name in enumerate(model.labels)}
    y_true = np.array([index[label] for label in labels], dtype=np.int64)
    started = time.perf_counter()
    y_pred = model.predict_proba(texts).argmax(-1).numpy()  # chunks of similar length
    seconds = time.perf_counter() - started
    report = evaluation.classification_report(y_true, y_pred, model.labels)
    report["predict_seconds"] = round(seconds, 2)
    return report


def _children_cpu() -> float:
    """CPU seconds used by finished child processes: on a shared machine a fairer
    measure of cost than wall time, which also counts waiting for the cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_one(
    name: str,
    params: dict[str, str],
    data: Path,
    work: Path,
    timeout: int,
    env: dict[str, str] | None = None,
) -> dict:
    base = work / "runs" / name
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(data / "input", base / "input")
    real_data.write_config(base, params)
    print(f"[{name}] training {json.dumps(params) if params else '(defaults)'}", flush=True)
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = helpers.run_entry("train", base, timeout=timeout, env=env)
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    (base / "train.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        failure = base / "output" / "failure"
        reason = failure.read_text().strip() if failure.exists() else done.stderr[-3000:]
        raise SystemExit(f"[{name}] training failed (exit {done.returncode}): {reason}")
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    shutil.rmtree(base / "checkpoints", ignore_errors=True)  # hundreds of MB, not needed
    texts, labels = read_csv(data / "heldout" / "test.csv")
    test = score(base / "model", texts, labels)
    result = {
        "name": name,
        "params": params,
        "test_macro_f1": test["macro_f1"],
        "test_accuracy": test["accuracy"],
        "test_f1_per_class": {k: v["f1"] for k, v in test["per_class"].items()},
        "val_macro_f1": metrics.get("macro_f1"),
        "precision": metrics.get("precision"),
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "predict_seconds": test["predict_seconds"],
    }
    print(
        f"[{name}] test macro-F1 {result['test_macro_f1']:.3f} accuracy "
        f"{result['test_accuracy']:.3f}, trained {result['train_seconds']:.0f}s "
        f"({result['epochs_run']} epochs, best {result['best_epoch']})",
        flush=True,
    )
    return result


def table(results: list[dict]) -> str:
    head = (
        f"{'config':<14} {'macro-F1':>8} {'accuracy':>8} {'val F1':>7} "
        f"{'train s':>8} {'wall s':>7} {'CPU s':>6} {'epochs':>6} {'best':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        val = f"{r['val_macro_f1']:.3f}" if r["val_macro_f1"] is not None else "-"
        lines.append(
            f"{r['name']:<14} {r['test_macro_f1']:>8.3f} {r['test_accuracy']:>8.3f} {val:>7} "
            f"{r['train_seconds']:>8.0f} {r['wall_seconds']:>7.0f} {r['cpu_seconds']:>6.0f} "
            f"{r['epochs_run']:>6} "
            f"{r['best_epoch']:>4}"
        )
    return "\n".join(lines)


def ratio_line(a: dict, b: dict) -> str:
    def ratio(x: float, y: float) -> str:
        return f"x{x / y:.2f}" if y else "n/a"

    return (
        f"{a['name']} vs {b['name']}: macro-F1 {a['test_macro_f1']:.3f} vs "
        f"{b['test_macro_f1']:.3f} ({ratio(a['test_macro_f1'], b['test_macro_f1'])}, "
        f"{a['test_macro_f1'] - b['test_macro_f1']:+.3f}), accuracy "
        f"{ratio(a['test_accuracy'], b['test_accuracy'])} "
        f"({a['test_accuracy'] - b['test_accuracy']:+.3f}), training time "
        f"{ratio(a['train_seconds'], b['train_seconds'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="keep data, models and results here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split")
    parser.add_argument(
        "--config",
        type=parse_config,
        action="append",
        default=[],
        metavar="NAME:k=v,...",
        help="a configuration to run (repeatable); default: defaults and plain",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per training run")
    parser.add_argument("--train", type=int, default=400, help="training rows")
    parser.add_argument("--validation", type=int, default=100, help="validation rows")
    parser.add_argument("--test", type=int, default=400, help="held-out test rows")
    args = parser.parse_args(argv)

    from sagemaker_platform.errors import UserError
    from sagemaker_platform.hyperparameters import parse

    configs = dict(args.config) if args.config else default_configs()
    for name, params in configs.items():
        try:
            parse(params)
        except UserError as exc:
            parser.error(f"config {name!r}: {exc}")

    work = args.work or Path(tempfile.mkdtemp(prefix="eval_defaults_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        summary = real_data.build(work / "data", args.seed, args.train, args.validation, args.test)
    except real_data.MissingPackage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"data: {summary['source']}, seed {summary['seed']}")
    for split, counts in summary["class_counts"].items():
        print(f"  {split:<10} {summary['rows'][split]:>4} rows {counts}")

    results = []
    for name, params in configs.items():
        results.append(train_one(name, params, work / "data", work, args.timeout))
        (work / "results.json").write_text(  # after each run: a long sweep keeps its rows
            json.dumps({"data": summary, "results": results}, indent=1) + "\n"
        )
    print()
    print(table(results))
    if len(results) >= 2:
        print(ratio_line(results[0], results[1]))
    print(f"\nresults: {work / 'results.json'}")
    if args.work is None:
        shutil.rmtree(work / "runs", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
