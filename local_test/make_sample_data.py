#!/usr/bin/env python3
"""Write a SageMaker-style input tree with a plug-in's small sample dataset.

    python3 local_test/make_sample_data.py [BASE_DIR] [--model NAME]
    python3 local_test/make_sample_data.py --payloads DIR [--model NAME]

BASE_DIR defaults to local_test/test_dir, NAME to text_classifier (or the MODEL
environment variable). Creates BASE_DIR/input/config/{hyperparameters,inputdataconfig,
resourceconfig}.json and BASE_DIR/input/data/{train,validation}/ from the plug-in's
`sample.py`: its `write_data` and its demo `HYPERPARAMETERS`. With --payloads, writes
the plug-in's sample requests (`PAYLOADS`) into DIR instead, one file each, and prints
one line per file: its path and its content type (what local_test/demo.sh sends).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BASE = HERE / "test_dir"
DEFAULT_MODEL = "text_classifier"
sys.path.insert(0, str(HERE.parent / "model"))


def sample_module(model: str = DEFAULT_MODEL):
    """The plug-in's `sample` module (model/plugins/NAME/sample.py)."""
    from sagemaker_platform import registry

    return importlib.import_module(registry.module_name(model) + ".sample")


def write_job(
    base: Path,
    hyperparameters: dict[str, str] | None = None,
    n_train: int = 320,
    n_val: int = 80,
    model: str = DEFAULT_MODEL,
) -> Path:
    """An /opt/ml input tree: config files plus train and validation channels. The
    hyperparameters are the plug-in's demo ones unless given; `model` is added to them
    for any plug-in but the default."""
    sample = sample_module(model)
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    params = dict(sample.HYPERPARAMETERS if hyperparameters is None else hyperparameters)
    if model != DEFAULT_MODEL:
        params.setdefault("model", model)
    (config / "hyperparameters.json").write_text(json.dumps(params, indent=1) + "\n")
    names = ["train", "validation"] if n_val else ["train"]
    channels = {
        name: {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
        for name in names
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels, indent=1) + "\n")
    resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resource, indent=1) + "\n")
    sample.write_data(base / "input" / "data" / "train", n_train, seed=1)
    if n_val:
        sample.write_data(base / "input" / "data" / "validation", n_val, seed=2)
    return base


_SUFFIXES = {
    "application/json": ".json",
    "application/jsonlines": ".jsonl",
    "text/csv": ".csv",
    "text/plain": ".txt",
    "image/png": ".png",
    "image/jpeg": ".jpg",
}


def write_payloads(out: Path, model: str = DEFAULT_MODEL) -> list[tuple[Path, str]]:
    """The plug-in's sample requests as files in `out`: (path, content type) each."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (content_type, body) in enumerate(sample_module(model).PAYLOADS.items()):
        path = out / f"request-{i + 1}{_SUFFIXES.get(content_type, '.bin')}"
        path.write_bytes(body)
        written.append((path, content_type))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", type=Path, default=DEFAULT_BASE)
    parser.add_argument("--model", default=os.environ.get("MODEL") or DEFAULT_MODEL)
    parser.add_argument("--payloads", type=Path, help="write the sample requests here instead")
    args = parser.parse_args()
    if args.payloads:
        for path, content_type in write_payloads(args.payloads, args.model):
            print(f"{path} {content_type}")
        return
    write_job(args.base, model=args.model)
    print(f"sample job for model={args.model} written to {args.base}")


if __name__ == "__main__":
    main()
