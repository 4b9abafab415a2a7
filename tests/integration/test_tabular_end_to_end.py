"""The tabular plug-in end to end: model/train and model/serve as subprocesses on a
temporary /opt/ml tree, for classification and regression."""

import json
from pathlib import Path

import pandas as pd
import pytest
import requests

from plugins.tabular import sample
from tests import helpers

FEATURES = sample.FEATURES
FAST = {"epochs": "3", "batch_size": "32", "early_stopping_patience": "0"}


def job(base: Path, hyperparameters: dict, files: dict[str, pd.DataFrame]) -> Path:
    """An /opt/ml tree with `files` ({"train/a.csv": frame, ...}) as its channels."""
    for name, frame in files.items():
        path = base / "input" / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        elif path.suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    helpers.write_hyperparameters(base, hyperparameters)
    return base


def houses(tmp: Path, n: int, seed: int) -> pd.DataFrame:
    return pd.read_csv(sample.write_data(tmp, n, seed))


def trained(tmp: Path, hyperparameters: dict, files: dict) -> Path:
    base = job(tmp / "opt_ml", hyperparameters, files)
    result = helpers.run_entry("train", base, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (tmp / "train.log").write_text(result.stdout + result.stderr)
    return base


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tabular_classifier")
    frame = houses(tmp, 240, 0)
    base = trained(
        tmp,
        {**sample.HYPERPARAMETERS, **FAST},
        {"train/part1.parquet": frame[:120], "train/part2.jsonl": frame[120:]},
    )
    with helpers.Server(base) as server:
        server.wait_ready()
        yield base, server


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tabular_regressor")
    base = trained(
        tmp,
        {**sample.HYPERPARAMETERS, **FAST, "label_column": "price", "task": "regression"},
        {"train/houses.tsv": houses(tmp, 200, 1), "validation/houses.csv": houses(tmp, 40, 2)},
    )
    with helpers.Server(base) as server:
        server.wait_ready()
        yield base, server


def post(server, body: bytes, content_type: str, accept: str = "application/json", **headers):
    headers = {"Content-Type": content_type, "Accept": accept, **headers}
    return requests.post(server.url + "/invocations", data=body, headers=headers, timeout=30)


def with_ids(content_type: str) -> bytes:
    """The sample request with an `id` on each record (JSON and JSON Lines)."""
    instances = json.loads(sample.PAYLOADS["application/json"])["instances"]
    tagged = [{**r, "id": f"house-{i}"} for i, r in enumerate(instances)]
    if content_type == "application/json":
        return json.dumps({"instances": tagged}).encode()
    return "".join(json.dumps(r) + "\n" for r in tagged).encode()


# --- training --------------------------------------------------------------------------
def result_line(base: Path) -> str:
    log = (base.parent / "train.log").read_text()
    return next(line for line in log.splitlines() if " result " in line)


def test_classification_trains_end_to_end(classifier):
    base, _ = classifier
    model = base / "model"
    assert json.loads((model / "plugin.json").read_text())["plugin"] == "tabular"
    schema = json.loads((model / "schema.json").read_text())
    assert schema["task"] == "classification" and schema["features"] == FEATURES
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert metrics["model"] == "tabular" and metrics["num_examples"] == 48
    assert 0 <= metrics["val_accuracy"] <= 1 and "confusion_matrix" in metrics
    assert (base / "output" / "data" / "confusion_matrix.png").stat().st_size > 1000
    assert "val_accuracy=" in result_line(base) and "val_f1=" in result_line(base)


def test_regression_trains_end_to_end(regressor):
    base, _ = regressor
    schema = json.loads((base / "model" / "schema.json").read_text())
    assert schema["task"] == "regression" and schema["target"]["std"] > 0
    metrics = json.loads((base / "output" / "data" / "metrics.json").read_text())
    assert metrics["num_examples"] == 40  # the validation channel
    assert metrics["val_rmse"] > 0 and metrics["val_mae"] > 0 and metrics["val_r2"] <= 1
    assert (base / "output" / "data" / "predicted_vs_actual.png").stat().st_size > 1000
    line = result_line(base)
    assert all(f"{k}=" in line for k in ("val_rmse", "val_mae", "val_r2"))


# --- serving ---------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", list(sample.PAYLOADS))
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv"])
def test_classifier_answers_every_format(classifier, content_type, accept):
    _, server = classifier
    body = sample.PAYLOADS[content_type] if content_type == "text/csv" else with_ids(content_type)
    response = post(server, body, content_type, accept)
    assert response.status_code == 200, response.text
    if accept == "application/json":
        answers = response.json()["predictions"]
    elif accept == "application/jsonlines":
        answers = [json.loads(line) for line in response.text.splitlines()]
    else:
        answers = [line.split(",") for line in response.text.splitlines()]
    assert len(answers) == 3
    labels = {"budget", "standard", "premium"}
    for i, answer in enumerate(answers):
        head = [f"house-{i}"] if content_type != "text/csv" else []  # CSV rows carry no id
        if accept == "text/csv":
            assert answer[: len(head)] == head and answer[len(head)] in labels
            assert len(answer) == len(head) + 2 + 3
        else:
            assert [answer["id"]] == head if head else "id" not in answer
            assert answer["label"] in labels
            assert abs(sum(answer["probabilities"].values()) - 1) < 1e-3


def test_classifier_top_k(classifier):
    _, server = classifier
    response = post(
        server,
        sample.PAYLOADS["text/csv"],
        "text/csv",
        **{"X-Amzn-SageMaker-Custom-Attributes": "top_k=2"},
    )
    assert response.status_code == 200, response.text
    top = response.json()["predictions"][0]["top_k"]
    assert len(top) == 2 and top[0]["score"] >= top[1]["score"]


@pytest.mark.parametrize("content_type", list(sample.PAYLOADS))
def test_regressor_answers_one_number_per_record(regressor, content_type):
    _, server = regressor
    response = post(server, sample.PAYLOADS[content_type], content_type, "text/csv")
    assert response.status_code == 200, response.text
    values = [float(line) for line in response.text.splitlines()]
    assert len(values) == 3 and values[1] > values[0]  # 142 m² in the centre vs 54 m²
    answers = post(server, with_ids("application/jsonlines"), "application/jsonlines").json()
    assert [a["id"] for a in answers["predictions"]] == ["house-0", "house-1", "house-2"]


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", {"instances": [{"rooms": 2}]}, "record 1 has no field 'area_m2'"),
        (
            "application/json",
            [
                {
                    "area_m2": "big",
                    "rooms": 1,
                    "age_years": 1,
                    "distance_km": 1,
                    "district": "north",
                    "heating": "gas",
                }
            ],
            "record 1: column 'area_m2' has a non-numeric value 'big'",
        ),
        (
            "text/csv",
            b"54,2,35,3.1,north,gas\n54,two,35,3.1,north,gas\n",
            "CSV row 2: column 'rooms' has a non-numeric value 'two'",
        ),
        ("text/csv", b"54,2,35\n", "CSV row 1 has 3 columns; expected 6"),
    ],
)
def test_bad_requests_name_the_column(classifier, regressor, content_type, body, message):
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    for _, server in (classifier, regressor):
        response = post(server, body, content_type)
        assert response.status_code == 400
        assert message in response.json()["error"]


# --- failures --------------------------------------------------------------------------
def failed(tmp: Path, hyperparameters: dict, files: dict) -> str:
    base = job(tmp / "opt_ml", {**sample.HYPERPARAMETERS, **FAST, **hyperparameters}, files)
    result = helpers.run_entry("train", base, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    return helpers.failure_reason(base)


def test_failure_names_a_missing_feature_column(tmp_path):
    frame = houses(tmp_path, 40, 3)
    reason = failed(
        tmp_path, {}, {"train/a.csv": frame, "train/b.csv": frame.drop(columns="rooms")}
    )
    assert "train/b.csv has no column 'rooms'" in reason


def test_failure_names_a_file_without_an_inferred_column(tmp_path):
    frame = houses(tmp_path, 40, 3)
    reason = failed(
        tmp_path,
        {"feature_columns": "", "label_column": "price"},
        {"train/a.csv": frame, "train/b.jsonl": frame.drop(columns="district")},
    )
    assert "train/b.jsonl has no values in column 'district'" in reason


def test_failure_names_a_non_numeric_value(tmp_path):
    frame = houses(tmp_path, 40, 3).astype({"distance_km": object})
    frame.loc[4, "distance_km"] = "far"
    reason = failed(tmp_path, {}, {"train/houses.csv": frame})
    assert (
        "column 'distance_km' has a non-numeric value 'far' in train/houses.csv (data row 5)"
        in reason
    )
