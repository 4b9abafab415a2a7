#!/usr/bin/env python3
"""Write a SageMaker-style input tree with a small labelled sample dataset.

    python3 local_test/make_sample_data.py [BASE_DIR]      (default: local_test/test_dir)

Creates BASE_DIR/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json and
BASE_DIR/input/data/{train,validation}/ with customer-support messages labelled by
team (billing, shipping, technical, account). The texts are generated from templates
with a fixed seed, so the set is the same on every machine and contains no copied data.
The classes are imbalanced, as real ones are.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BASE = HERE / "test_dir"

# The demo's hyperparameters: small enough to train on a laptop CPU in about a minute.
DEMO_HYPERPARAMETERS = {"epochs": "3", "batch_size": "16", "max_length": "64"}

_SUBJECTS = {
    "billing": [
        "I was charged twice for my {plan} subscription this month",
        "the invoice for order {order} shows the wrong amount",
        "please refund the {amount} dollars you took from my card",
        "why did my {plan} plan renew at a higher price",
        "my credit card payment keeps getting declined at checkout",
        "can I get a receipt with our company VAT number on it",
    ],
    "shipping": [
        "my package for order {order} has not arrived after {days} days",
        "the tracking number you sent does not work",
        "the parcel was delivered to the wrong address",
        "can you ship order {order} to {city} instead",
        "the box arrived damaged and the {item} inside is broken",
        "how long does express delivery to {city} take",
    ],
    "technical": [
        "the app crashes every time I open the {screen} screen",
        "I get error {code} when I try to sync my {item}",
        "the website is extremely slow since the last update",
        "my {item} will not connect to the wifi anymore",
        "the export to CSV button does nothing in {browser}",
        "after updating to version {version} the login page stays blank",
    ],
    "account": [
        "I forgot my password and the reset email never comes",
        "please delete my account and all my personal data",
        "how do I change the email address on my profile",
        "someone else logged into my account from {city}",
        "I want to add a second user to our {plan} account",
        "my account was locked after too many login attempts",
    ],
}
_WEIGHTS = {"billing": 0.35, "shipping": 0.3, "technical": 0.25, "account": 0.1}
_FILL = {
    "plan": ["basic", "pro", "family", "business"],
    "order": ["A1043", "B2291", "C7710", "D3385", "E5120"],
    "amount": ["12", "49.99", "120", "7.50"],
    "days": ["5", "9", "14", "21"],
    "city": ["Lyon", "Denver", "Osaka", "Porto", "Leeds"],
    "item": ["headphones", "printer", "watch", "calendar", "phone"],
    "screen": ["settings", "checkout", "home", "messages"],
    "code": ["500", "E42", "0x80070005", "403"],
    "browser": ["Firefox", "Safari", "Chrome"],
    "version": ["3.2", "4.0.1", "5.1"],
}
_OPENERS = ["", "Hi, ", "Hello team, ", "Urgent: ", "Good morning. ", "hey "]
_CLOSERS = ["", " Thanks.", " Please help.", " This is the second time I write.", " Regards, Sam"]


def generate(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    labels = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()), k=n)
    rows = []
    for label in labels:
        body = rng.choice(_SUBJECTS[label])
        body = body.format(**{k: rng.choice(v) for k, v in _FILL.items()})
        rows.append({"text": rng.choice(_OPENERS) + body + rng.choice(_CLOSERS), "label": label})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def write_job(
    base: Path,
    hyperparameters: dict[str, str] | None = None,
    n_train: int = 320,
    n_val: int = 80,
) -> Path:
    """An /opt/ml input tree: config files plus train and validation channels."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    params = dict(DEMO_HYPERPARAMETERS if hyperparameters is None else hyperparameters)
    (config / "hyperparameters.json").write_text(json.dumps(params, indent=1) + "\n")
    channels = {"train": {"ContentType": "text/csv"}, "validation": {"ContentType": "text/csv"}}
    for name in channels:
        channels[name].update(
            {
                "TrainingInputMode": "File",
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None",
            }
        )
    (config / "inputdataconfig.json").write_text(json.dumps(channels, indent=1) + "\n")
    resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resource, indent=1) + "\n")
    write_csv(base / "input" / "data" / "train" / "train.csv", generate(n_train, seed=1))
    if n_val:
        write_csv(
            base / "input" / "data" / "validation" / "validation.csv", generate(n_val, seed=2)
        )
    return base


def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_BASE
    write_job(base)
    print(f"sample job written to {base}")


if __name__ == "__main__":
    main()
