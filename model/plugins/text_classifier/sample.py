"""The text classifier's sample data and requests: the demo, `make new-model` and the
platform tests that run once per plug-in use them.

Customer-support messages labelled by team (billing, shipping, technical, account),
generated from templates with a fixed seed: the same set on every machine, no copied
data, and imbalanced classes, as real ones are.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

# The demo's hyperparameters: small enough to train on a laptop CPU in about a minute.
HYPERPARAMETERS = {"epochs": "3", "batch_size": "16", "max_length": "64"}

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


def write_data(channel: Path, n: int, seed: int) -> Path:
    """`n` labelled messages as CSV (columns text, label) in the channel folder."""
    path = channel / f"{channel.name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(generate(n, seed))
    return path


_TEXTS = [
    "my parcel never arrived",
    "I was charged twice this month, please refund me",
    'the app shows error 500, "again"',
]
# Content type -> a valid request: three records in JSON, JSON Lines and CSV; the whole
# body is one text in text/plain.
PAYLOADS = {
    "application/json": json.dumps({"instances": _TEXTS}).encode(),
    "application/jsonlines": "".join(json.dumps({"text": t}) + "\n" for t in _TEXTS).encode(),
    "text/csv": "".join(
        '"' + t.replace('"', '""') + '"\n' if "," in t or '"' in t else t + "\n" for t in _TEXTS
    ).encode(),
    "text/plain": _TEXTS[0].encode(),
}
