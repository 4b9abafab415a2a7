"""A made-up houses table, for the demo and the tests: numeric and categorical
columns, a price (regression) and a price band (classification, `label`).

    area_m2, rooms, age_years, distance_km   numbers (age_years has a few gaps)
    district, heating                        categories
    price                                    thousands, from the columns plus noise
    label                                    budget, standard or premium (price band)

The demo's hyperparameters classify the band; `label_column=price` regresses the price
on the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

FEATURES = ["area_m2", "rooms", "age_years", "distance_km", "district", "heating"]
HYPERPARAMETERS: dict[str, str] = {
    "model": "tabular",
    "label_column": "label",
    "feature_columns": ",".join(FEATURES),
    "epochs": "20",
    "batch_size": "32",
    "learning_rate": "0.003",
}
# What the platform tests need of this plug-in: the MLP steps in a millisecond, so the
# SIGTERM test's epoch needs many rows to be stopped in the middle.
TEST_SIZES = {"sigterm_rows": 16_000}
_DISTRICTS = {"centre": 1.35, "riverside": 1.2, "north": 1.0, "south": 0.95, "outskirts": 0.8}
_HEATING = {"heat_pump": 1.08, "gas": 1.0, "electric": 0.95}


def write_data(channel: Path, n: int, seed: int) -> Path:
    """houses.csv in `channel`: `n` rows drawn from `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    area = rng.gamma(6.0, 15.0, n).round(1) + 20
    rooms = np.clip(np.round(area / 25 + rng.normal(0, 0.7, n)), 1, 8).astype(int)
    age = rng.integers(0, 90, n).astype(float)
    age[rng.random(n) < 0.05] = np.nan  # unknown construction year
    distance = rng.gamma(2.0, 3.0, n).round(2)
    district = rng.choice(list(_DISTRICTS), n)
    heating = rng.choice(list(_HEATING), n, p=[0.25, 0.5, 0.25])
    factor = np.array([_DISTRICTS[d] for d in district]) * np.array([_HEATING[h] for h in heating])
    price = (
        (area * 3.2 + rooms * 12 - np.nan_to_num(age, nan=40) * 0.6 - distance * 4 + 60)
        * factor
        * rng.lognormal(0, 0.08, n)
    ).round(1)
    low, high = np.quantile(price, [1 / 3, 2 / 3])
    label = np.where(price < low, "budget", np.where(price < high, "standard", "premium"))
    frame = pd.DataFrame(
        {
            "area_m2": area,
            "rooms": rooms,
            "age_years": age,
            "distance_km": distance,
            "district": district,
            "heating": heating,
            "price": price,
            "label": label,
        }
    )
    channel.mkdir(parents=True, exist_ok=True)
    path = channel / "houses.csv"
    frame.to_csv(path, index=False)
    return path


_RECORDS = [
    {"area_m2": 54.0, "rooms": 2, "age_years": 35, "distance_km": 3.1, "district": "north", "heating": "gas"},
    {"area_m2": 142.5, "rooms": 5, "age_years": 4, "distance_km": 0.8, "district": "centre", "heating": "heat_pump"},
    {"area_m2": 78.0, "rooms": 3, "age_years": None, "distance_km": 12.4, "district": "outskirts", "heating": "electric"},
]  # fmt: skip


def _csv_line(record: dict) -> str:
    return ",".join("" if record[c] is None else str(record[c]) for c in FEATURES)


PAYLOADS: dict[str, bytes] = {
    "application/json": json.dumps({"instances": _RECORDS}).encode(),
    "application/jsonlines": "".join(json.dumps(r) + "\n" for r in _RECORDS).encode(),
    "text/csv": "".join(_csv_line(r) + "\n" for r in _RECORDS).encode(),
}
