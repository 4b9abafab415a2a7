"""The skeleton's sample data and requests: TODO a small, made-up set of your own data.

`write_data` fills a channel folder; `HYPERPARAMETERS` are the demo's; `PAYLOADS` hold a
valid request for each content type the plug-in takes: of exactly three records for JSON,
JSON Lines and CSV, of one record for any other type (image/png, text/plain, ...). An
optional `TEST_SIZES = {"sigterm_rows": N}` gives the platform tests' SIGTERM job more
training rows (default 96) when an epoch of 96 rows is over too fast to interrupt.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HYPERPARAMETERS = {"epochs": "5", "batch_size": "16"}


def write_data(channel: Path, n: int, seed: int) -> Path:
    """`n` rows of y = 3 x1 - 2 x2 + 1 + noise, as CSV."""
    rng = random.Random(seed)
    channel.mkdir(parents=True, exist_ok=True)
    path = channel / f"{channel.name}.csv"
    lines = ["x1,x2,y"]
    for _ in range(n):
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        lines.append(f"{x1:.4f},{x2:.4f},{3 * x1 - 2 * x2 + 1 + rng.gauss(0, 0.1):.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


_RECORDS = [{"x1": 0.5, "x2": -0.25}, {"x1": -1.0, "x2": 0.0}, {"id": "c", "x1": 0.0, "x2": 1.0}]
PAYLOADS = {
    "application/json": json.dumps({"instances": _RECORDS}).encode(),
    "application/jsonlines": "".join(json.dumps(r) + "\n" for r in _RECORDS).encode(),
}
