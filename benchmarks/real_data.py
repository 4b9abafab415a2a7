#!/usr/bin/env python3
"""A small, imbalanced, real-text classification set from Debian's `fortunes` package.

    python3 benchmarks/real_data.py OUT_DIR [--seed 0] [--train 400] [--validation 100] [--test 400]

Fortune cookies are real, human-written texts (quotes, jokes, anecdotes, definitions;
from one line to a page) filed by topic. The package is versioned and installed with
apt, so every machine builds the same set offline and no text is copied into this
repository. The topic is the label; the classes keep the package's natural imbalance
(computers has 14 times as many entries as medicine) and the labels are as noisy as
real ones (a quip about programmers may sit in `computers` or in `science`).

OUT_DIR receives an /opt/ml-style tree:

    input/config/{hyperparameters,inputdataconfig,resourceconfig}.json
    input/data/train/train.csv              text,label  (what training fits)
    input/data/validation/validation.csv    text,label  (model selection, early stopping)
    heldout/test.csv                        text,label  (never seen by training: the score)
    dataset.json                            package version, categories, seed, class counts

Each split is stratified: every class keeps its share of the package in every split,
drawn without overlap, with a fixed seed. Needs `apt-get install -y fortunes`.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
APT_HINT = "sudo apt-get install -y --no-install-recommends fortunes"  # pulls fortunes-min
# Six topics with a clear subject and the package's natural imbalance (entries in
# fortunes 1:1.99.1-7.3): computers 1051, politics 703, science 625, law 206, food 198,
# medicine 74.
DEFAULT_CATEGORIES = ("computers", "politics", "science", "law", "food", "medicine")

_SEPARATOR = re.compile(r"^%[ \t]*$", re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08")  # nroff bold/underline: "_\bX" or "X\bX" is just X


class MissingPackage(RuntimeError):
    """The fortunes files are not installed."""


def parse_fortunes(raw: str) -> list[str]:
    """The entries of one fortune file: blocks separated by lines holding only `%`.

    Overstrike sequences are reduced to the visible character, surrounding blank lines
    and spaces dropped, empty entries skipped; line breaks and indentation inside an
    entry (poems, dialogues, attributions) are kept as they are part of the text.
    """
    text = _OVERSTRIKE.sub("", raw.replace("\r\n", "\n"))
    entries = (block.strip() for block in _SEPARATOR.split(text))
    return [e for e in entries if e]


def read_category(path: Path) -> list[str]:
    # The files are ASCII or UTF-8; a stray Latin-1 byte must not abort the build.
    return parse_fortunes(path.read_bytes().decode("utf-8", errors="replace"))


def load_categories(categories: Sequence[str], root: Path = FORTUNES_DIR) -> dict[str, list[str]]:
    """Entries per category, each text once: a text filed under two categories (its
    label is ambiguous) is dropped from both, a repeated one is kept once."""
    if not root.is_dir() or not any(root.iterdir()):
        raise MissingPackage(
            f"{root} not found: the real-text benchmark needs Debian's fortunes package. "
            f"Install it with: {APT_HINT}"
        )
    missing = [c for c in categories if not (root / c).is_file()]
    if missing:
        have = sorted(p.name for p in root.iterdir() if p.is_file() and not p.suffix)
        raise MissingPackage(
            f"no fortune category {missing[0]!r} in {root} (found: {', '.join(have) or 'none'}); "
            f"the categories used here come from the fortunes package: {APT_HINT}"
        )
    per_category = {c: list(dict.fromkeys(read_category(root / c))) for c in categories}
    seen: dict[str, int] = {}
    for texts in per_category.values():
        for t in texts:
            seen[t] = seen.get(t, 0) + 1
    return {c: [t for t in texts if seen[t] == 1] for c, texts in per_category.items()}


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Rows per class for a split of `total` rows, proportional to class size (largest
    remainder), at least 2 per class so that every class is in every split."""
    grand = sum(sizes.values())
    exact = {c: total * n / grand for c, n in sizes.items()}
    counts = {c: int(x) for c, x in exact.items()}
    by_remainder = sorted(sizes, key=lambda c: exact[c] - counts[c], reverse=True)
    for c in by_remainder[: total - sum(counts.values())]:
        counts[c] += 1
    return {c: max(2, n) for c, n in counts.items()}


def stratified_splits(
    per_category: dict[str, list[str]], rows: dict[str, int], seed: int
) -> dict[str, list[dict[str, str]]]:
    """Disjoint, stratified splits {split: [{"text", "label"}, ...]}, shuffled."""
    sizes = {c: len(t) for c, t in per_category.items()}
    wanted = {split: allocate(sizes, n) for split, n in rows.items()}
    rng = random.Random(seed)
    out: dict[str, list[dict[str, str]]] = {split: [] for split in rows}
    for c in sorted(per_category):
        texts = sorted(per_category[c])  # independent of file order, then seeded shuffle
        rng.shuffle(texts)
        need = sum(wanted[s][c] for s in rows)
        if need > len(texts):
            raise ValueError(f"category {c!r} has {len(texts)} entries, the splits need {need}")
        start = 0
        for split in rows:
            n = wanted[split][c]
            out[split].extend({"text": t, "label": c} for t in texts[start : start + n])
            start += n
    for split in out:
        rng.shuffle(out[split])
    return out


def write_csv(path: Path, rows: Iterable[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def write_config(base: Path, hyperparameters: dict[str, str]) -> None:
    """The input/config files SageMaker would write for a train + validation job."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=1) + "\n")
    channel = {
        "ContentType": "text/csv",
        "TrainingInputMode": "File",
        "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None",
    }
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": channel, "validation": channel}, indent=1) + "\n"
    )
    resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resource, indent=1) + "\n")


def package_version(name: str = "fortunes") -> str:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def build(
    out: Path,
    seed: int = 0,
    train: int = 400,
    validation: int = 100,
    test: int = 400,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    root: Path = FORTUNES_DIR,
) -> dict:
    """Write the tree under `out`; return the summary written to dataset.json."""
    per_category = load_categories(categories, root)
    splits = stratified_splits(
        per_category, {"train": train, "validation": validation, "test": test}, seed
    )
    write_config(out, {})
    write_csv(out / "input" / "data" / "train" / "train.csv", splits["train"])
    write_csv(out / "input" / "data" / "validation" / "validation.csv", splits["validation"])
    write_csv(out / "heldout" / "test.csv", splits["test"])
    summary = {
        "source": f"Debian package fortunes {package_version()} ({root})",
        "categories": list(categories),
        "seed": seed,
        "available": {c: len(t) for c, t in per_category.items()},
        "class_counts": {
            split: {c: sum(r["label"] == c for r in rows) for c in categories}
            for split, rows in splits.items()
        },
        "rows": {split: len(rows) for split, rows in splits.items()},
    }
    (out / "dataset.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="where to write the /opt/ml-style tree")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=400, help="training rows")
    parser.add_argument("--validation", type=int, default=100, help="validation rows")
    parser.add_argument("--test", type=int, default=400, help="held-out test rows")
    parser.add_argument(
        "--categories", default=",".join(DEFAULT_CATEGORIES), help="comma-separated topics"
    )
    args = parser.parse_args(argv)
    try:
        summary = build(
            args.out,
            args.seed,
            args.train,
            args.validation,
            args.test,
            [c.strip() for c in args.categories.split(",") if c.strip()],
        )
    except MissingPackage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fortunes dataset written to {args.out}")
    for split, counts in summary["class_counts"].items():
        print(f"  {split:10s} {summary['rows'][split]:4d} rows  {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
