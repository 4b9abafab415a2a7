"""The tabular plug-in without subprocesses: schema, requests, answers, data errors."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from plugins.tabular import codecs, plugin, sample
from plugins.tabular.config import Hyperparameters
from plugins.tabular.data import detect_task, load_rows
from sagemaker_platform import codecs as platform_codecs
from sagemaker_platform import evaluation, hyperparameters
from sagemaker_platform.channels import SOURCE
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, HTTPError
from sagemaker_platform.config import ConfigError
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData

FEATURES = sample.FEATURES


def houses(n: int = 60, seed: int = 0, source: str = "train/houses.csv") -> pd.DataFrame:
    """The sample table as the platform's reader hands it over."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.read_csv(sample.write_data(Path(tmp), n, seed))
    frame[SOURCE] = source
    return frame


def rows_of(train: pd.DataFrame, validation_fraction=0.2, val=None, **hp):
    defaults = {"feature_columns": ",".join(FEATURES)}
    data = TrainingData(train, val, validation_fraction, seed=0)
    return load_rows(Hyperparameters(**{**defaults, **hp}), data)


@pytest.fixture(scope="module")
def classification():
    return rows_of(houses())


@pytest.fixture(scope="module")
def regression():
    return rows_of(houses(), label_column="price")


def loaded(rows) -> SimpleNamespace:
    """What `decode` and `encode` use of a loaded model: its schema."""
    return SimpleNamespace(schema=rows.schema)


def records(n: int = 3) -> list[dict]:
    return json.loads(sample.PAYLOADS[JSON])["instances"][:n]


# --- schema ----------------------------------------------------------------------------
def test_schema_from_the_training_rows(classification):
    schema = classification.schema
    assert schema.task == "classification"
    assert schema.labels == ("budget", "premium", "standard")
    assert [c.name for c in schema.numeric] == ["area_m2", "rooms", "age_years", "distance_km"]
    assert [c.name for c in schema.categorical] == ["district", "heating"]
    assert set(schema.categorical[1].categories) == {"electric", "gas", "heat_pump"}
    train = classification.train
    assert train.numeric.dtype == np.float32 and train.categorical.dtype == np.int64
    assert abs(train.numeric[:, 0].mean()) < 1e-5  # standardised on the train rows
    assert len(train) + len(classification.val) == 60


def test_one_preprocessing_for_frames_and_records(classification):
    schema = classification.schema
    frame = pd.DataFrame(records())
    from_frame = schema.transform(frame)
    from_records = [r for r in codecs.decode(schema, sample.PAYLOADS[JSON], JSON)]
    assert np.array_equal(from_frame[0], np.stack([r.numeric for r in from_records]))
    assert np.array_equal(from_frame[1], np.stack([r.categorical for r in from_records]))
    from_csv = codecs.decode(schema, sample.PAYLOADS[CSV], CSV)
    assert np.array_equal(from_frame[0], np.stack([r.numeric for r in from_csv]))


def test_missing_numbers_are_the_mean_and_unknown_categories_index_zero(classification):
    schema = classification.schema
    row = {**records(1)[0], "age_years": None, "district": "moon", "heating": ""}
    numeric, categorical = schema.transform(pd.DataFrame([row]))
    assert numeric[0, 2] == 0.0  # the mean, standardised
    assert categorical[0].tolist() == [0, 0]
    csv_row = b"54,2,NA,3.1,moon,\n"
    (decoded,) = codecs.decode(schema, csv_row, CSV)
    assert decoded.numeric[2] == 0.0 and decoded.categorical.tolist() == [0, 0]


def test_schema_round_trips_through_json(classification, regression):
    from plugins.tabular.schema import Schema

    for rows in (classification, regression):
        again = Schema.from_dict(json.loads(json.dumps(rows.schema.to_dict())))
        assert again == rows.schema
    with pytest.raises(UserError, match="schema.json"):
        Schema.from_dict({"format_version": 1, "task": "regression"})


# --- requests --------------------------------------------------------------------------
def ids(rows) -> list:
    return [r.id for r in rows]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": records()},
        {"inputs": records()},
        records(),
        {"columns": FEATURES, "data": [[r[c] for c in FEATURES] for r in records()]},
        {c: [r[c] for r in records()] for c in FEATURES},
    ],
    ids=["instances", "inputs", "list", "split", "columns"],
)
def test_json_layouts_decode_alike(classification, body):
    schema = classification.schema
    expected = codecs.decode(schema, sample.PAYLOADS[JSON], JSON)
    got = codecs.decode(schema, json.dumps(body).encode(), JSON)
    assert np.array_equal(
        np.stack([r.numeric for r in got]), np.stack([r.numeric for r in expected])
    )
    assert len(got) == 3


def test_one_record_and_ids_and_extra_fields(classification):
    schema = classification.schema
    one = {**records(1)[0], "id": "a-1", "unused": [1, 2]}
    assert ids(codecs.decode(schema, json.dumps(one).encode(), JSON)) == ["a-1"]
    lines = "".join(json.dumps({**r, "id": i}) + "\n" for i, r in enumerate(records()))
    assert ids(codecs.decode(schema, lines.encode(), JSONLINES)) == [0, 1, 2]
    split = {
        "columns": [*FEATURES, "id"],
        "data": [[r[c] for c in FEATURES] + [9] for r in records()],
    }
    assert ids(codecs.decode(schema, json.dumps(split).encode(), JSON)) == [9, 9, 9]
    nested = [{**r, "id": {"a": [1]}} if i == 1 else r for i, r in enumerate(records())]
    with pytest.raises(HTTPError) as err:
        codecs.decode(schema, json.dumps(nested).encode(), JSON)
    assert err.value.message == ("record 2.id is a JSON object; an id is a string or a number"), (
        err.value.message
    )


def test_csv_header_row_is_skipped(classification):
    schema = classification.schema
    with_header = (",".join(FEATURES) + "\n").encode() + sample.PAYLOADS[CSV]
    assert len(codecs.decode(schema, with_header, CSV)) == 3


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (JSON, {"instances": [{"rooms": 2}]}, "record 1 has no field 'area_m2'"),
        (JSONLINES, None, "line 2 has no field 'heating'"),
        (JSON, {"instances": [{"x": 1}, 5]}, "record 2 is a JSON int"),
        (
            JSON,
            [{**records(1)[0], "rooms": "two"}],
            "record 1: column 'rooms' has a non-numeric value 'two'",
        ),
        (JSON, [records(1)[0], {**records(1)[0], "area_m2": True}], "record 2: column 'area_m2'"),
        (JSON, [{**records(1)[0], "district": {"a": 1}}], "record 1: column 'district'"),
        (JSON, {"area_m2": [1, 2], "rooms": [1]}, "'area_m2' has 2, 'rooms' has 1"),
        (JSON, {"columns": ["a", "b"], "data": [[1]]}, "data row 1 has 1 values; expected 2"),
        (JSON, [], "empty list"),
        (JSON, "text", "JSON body is a str"),
        (CSV, b"1,2,3\n", "CSV row 1 has 3 columns; expected 6"),
        (
            CSV,
            b"54,2,35,far,north,gas\n",
            "CSV row 1: column 'distance_km' has a non-numeric value 'far'",
        ),
        (
            CSV,
            (",".join(FEATURES) + "\n54,2,35,inf,north,gas\n").encode(),
            "CSV row 2: column 'distance_km'",
        ),
    ],
)
def test_bad_requests_are_400_naming_the_column(classification, content_type, body, message):
    if body is None:
        lines = [records(1)[0], {k: v for k, v in records(1)[0].items() if k != "heating"}]
        body = "".join(json.dumps(r) + "\n" for r in lines).encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    with pytest.raises(HTTPError) as err:
        plugin.decode(loaded(classification), body, content_type, {})
    assert err.value.status == 400
    assert message in err.value.message


def test_bad_top_k_is_400_before_any_work(classification, regression):
    with pytest.raises(HTTPError, match="top_k"):
        plugin.decode(loaded(classification), sample.PAYLOADS[JSON], JSON, {"top_k": "4"})
    assert len(plugin.decode(loaded(regression), sample.PAYLOADS[JSON], JSON, {"top_k": "4"})) == 3


# --- answers ---------------------------------------------------------------------------
def test_classification_answers(classification):
    schema = classification.schema
    rows = codecs.decode(
        schema, json.dumps([{**r, "id": f"r{i}"} for i, r in enumerate(records())]).encode(), JSON
    )
    outputs = np.array([[0.1, 0.7, 0.2]] * 3)
    answers = json.loads(plugin.encode(loaded(classification), rows, outputs, JSON, {}))[
        "predictions"
    ]
    assert answers[0] == {
        "id": "r0",
        "label": "premium",
        "score": 0.7,
        "probabilities": {"budget": 0.1, "premium": 0.7, "standard": 0.2},
    }
    lines = plugin.encode(loaded(classification), rows, outputs, CSV, {"top_k": "2"}).splitlines()
    assert lines == [
        "r0,premium,0.7,standard,0.2",
        "r1,premium,0.7,standard,0.2",
        "r2,premium,0.7,standard,0.2",
    ]
    assert len(codecs.encode(schema, rows, outputs, JSONLINES).splitlines()) == 3


def test_regression_answers(regression):
    rows = codecs.decode(regression.schema, sample.PAYLOADS[CSV], CSV)
    outputs = np.array([101.5, 202.25, 3.0])
    schema = regression.schema
    assert codecs.encode(schema, rows, outputs, CSV) == "101.5\n202.25\n3.0\n"
    assert json.loads(codecs.encode(schema, rows, outputs, JSON))["predictions"][1] == {
        "prediction": 202.25
    }
    assert codecs.top_k({"top_k": "99"}, regression.schema) is None  # ignored


# --- hyperparameters -------------------------------------------------------------------
def test_hyperparameters_parse_beside_the_platforms():
    job = hyperparameters.parse({"model": "tabular", "hidden_sizes": "32", "task": "regression"})
    assert job.hp.hidden_sizes == "32" and job.hp.task == "regression"
    with pytest.raises(ConfigError, match="task"):
        hyperparameters.parse({"model": "tabular", "task": "ranking"})
    with pytest.raises(ConfigError, match="unknown hyperparameter 'text_column'"):
        hyperparameters.parse({"model": "tabular", "text_column": "x"})


@pytest.mark.parametrize("value", ["64,abc", "0", "-3", "64;64"])
def test_bad_hidden_sizes_name_the_key(value):
    from plugins.tabular.config import hidden_layers

    with pytest.raises(UserError, match="hidden_sizes"):
        hidden_layers(Hyperparameters(hidden_sizes=value))
    assert hidden_layers(Hyperparameters(hidden_sizes=" 32, 16 ")) == [32, 16]


def test_hidden_layers_too_big_to_train_are_refused_before_any_is_built():
    """`65536,65536` is 16 GB of weights: a job killed for memory, with no reason."""
    from plugins.tabular.config import hidden_layers

    with pytest.raises(UserError) as err:
        hidden_layers(Hyperparameters(hidden_sizes="65536,65536"))
    assert str(err.value) == (
        "hidden_sizes='65536,65536' is not valid: its layers hold 4,294,967,296 weights "
        "between them, more than 268,435,456 (1 GB in fp32)"
    )
    assert hidden_layers(Hyperparameters(hidden_sizes="16384,16384")) == [16384, 16384]
    assert hidden_layers(Hyperparameters(hidden_sizes="65536")) == [65536]  # one layer


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (["a", "b"] * 10, "classification"),
        ([0, 1, 2] * 10, "classification"),
        ([True, False] * 10, "classification"),
        ([0.5, 1.5] * 10, "regression"),
        (list(range(30)), "regression"),  # many distinct integers
        ([0, 1, 2, 3] * 2, "regression"),  # half the rows distinct
    ],
)
def test_task_auto_detection(labels, task):
    assert detect_task(Hyperparameters(), pd.Series(labels)) == task
    assert detect_task(Hyperparameters(task="regression"), pd.Series(labels)) == "regression"


# --- data errors -----------------------------------------------------------------------
def test_non_numeric_value_names_column_file_and_value():
    train = houses()
    train["rooms"] = train["rooms"].astype(object)
    train.loc[7, "rooms"] = "three"
    with pytest.raises(
        UserError,
        match=r"'rooms' has a non-numeric value 'three' in train/houses.csv \(data row 8\)",
    ):
        rows_of(train)
    rows = rows_of(train, categorical_columns="rooms")  # unless it is declared categorical
    assert [c.name for c in rows.schema.categorical] == ["rooms", "district", "heating"]


def test_inferred_features_need_every_file_to_have_them():
    a, b = houses(30, 1, "train/a.csv"), houses(30, 2, "train/b.parquet")
    b["heating"] = np.nan  # what pandas' concat leaves for a file without the column
    train = pd.concat([a, b], ignore_index=True)
    with pytest.raises(
        UserError, match=r"train/b.parquet has no values in column 'heating' \(the other files"
    ):
        rows_of(train, feature_columns="")
    rows = rows_of(houses(), feature_columns="", label_column="price")
    assert "label" in rows.schema.features and "price" not in rows.schema.features


@pytest.mark.parametrize(
    ("change", "hp", "message"),
    [
        (
            lambda f: f.assign(label=f["label"].where(f.index != 3)),
            {},
            "1 rows without a value in the label column 'label'",
        ),
        (lambda f: f.assign(label="same"), {}, "single class"),
        (lambda f: f.head(5), {}, "has 5 rows; the tabular model needs at least 10"),
        (lambda f: f, {"categorical_columns": "colour"}, "categorical_columns names 'colour'"),
        (lambda f: f, {"feature_columns": "rooms,label"}, "lists the label column"),
        (
            lambda f: f,
            {"task": "regression"},
            r"label column 'label' has a non-numeric value '\w+' in train/houses.csv",
        ),
    ],
)
def test_data_errors(change, hp, message):
    with pytest.raises(UserError, match=message):
        rows_of(change(houses()), **hp)


def test_validation_channel():
    train, val = houses(60, 0), houses(20, 1, "validation/houses.csv")
    rows = rows_of(train, val=val)
    assert rows.validation == "channel" and len(rows.val) == 20 and len(rows.train) == 60
    with pytest.raises(UserError, match="validation/houses.csv has no column 'heating'"):
        rows_of(train, val=val.drop(columns="heating"), feature_columns="")
    assert not rows_of(train, validation_fraction=0.0).has_validation


# --- evaluation ------------------------------------------------------------------------
def test_regression_report():
    report = evaluation.regression_report(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert report == {
        "rmse": round((4 / 3) ** 0.5, 6),
        "mae": round(2 / 3, 6),
        "r2": -1.0,
        "num_examples": 3,
    }
    assert evaluation.regression_report(np.ones(2), np.ones(2))["r2"] == 0.0


def test_evaluate_and_predict_for_both_tasks(classification, regression, tmp_path):
    from plugins.tabular import evaluate
    from plugins.tabular.network import TabularNet

    for rows, plot, keys in (
        (classification, "confusion_matrix.png", {"val_accuracy", "val_f1", "confusion_matrix"}),
        (regression, "predicted_vs_actual.png", {"val_rmse", "val_mae", "val_r2"}),
    ):
        schema = rows.schema
        net = TabularNet(
            len(schema.numeric),
            [c.cardinality for c in schema.categorical],
            [8],
            0.0,
            len(schema.labels) or 1,
        )
        report = evaluate(net, rows, tmp_path)
        assert keys <= set(report) and (tmp_path / plot).stat().st_size > 1000
        assert report["num_examples"] == len(rows.val)
        assert set(evaluation.headline(report)) == {k for k in keys if k.startswith("val_")}


# --- the record limit, counted while parsing ------------------------------------------
LIMIT = 10
MANY = 300_000


def _tiny(n: int, layout: str) -> bytes:
    """n one-value records (a 400 each: fields are missing) in one of the layouts."""
    if layout == "jsonlines":
        return b"{}\n" * n
    if layout == "csv":
        return b"1\n" * n
    if layout == "csv-header":
        return (",".join(FEATURES) + "\n").encode() + b"1\n" * n
    if layout == "split":
        return json.dumps({"columns": ["x"], "data": [[1]] * n}).encode()
    if layout == "columns":
        return json.dumps({"x": [1] * n}).encode()
    if layout == "instances":
        return json.dumps({"instances": [{}] * n}).encode()
    return json.dumps([{}] * n).encode()


LAYOUTS = {
    "list": JSON,
    "instances": JSON,
    "split": JSON,
    "columns": JSON,
    "jsonlines": JSONLINES,
    "csv": CSV,
    "csv-header": CSV,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_many_tiny_records_are_a_413_before_any_is_checked(classification, layout):
    """Each record here would be a 400 (a field missing): over the limit, the count
    comes first, at the limit the records are checked."""
    model, content_type = loaded(classification), LAYOUTS[layout]
    with platform_codecs.request_limits(LIMIT):
        for n in (LIMIT + 1, MANY):
            with pytest.raises(HTTPError) as err:
                plugin.decode(model, _tiny(n, layout), content_type, {})
            assert err.value.status == 413, err.value.message
            assert "MODEL_SERVER_MAX_RECORDS=10;" in err.value.message
        with pytest.raises(HTTPError) as err:
            plugin.decode(model, _tiny(LIMIT, layout), content_type, {})
        assert err.value.status == 400


def test_a_csv_header_and_the_limits_records_are_answered(classification):
    row = sample.PAYLOADS[CSV].splitlines(keepends=True)[0]
    body = (",".join(FEATURES) + "\n").encode() + row * LIMIT
    with platform_codecs.request_limits(LIMIT):
        assert len(codecs.decode(classification.schema, body, CSV)) == LIMIT


# --- what `make mutate` found no test reading ---------------------------------------------
def test_a_regression_answer_echoes_the_records_id_in_json_and_csv(regression):
    schema = regression.schema
    body = json.dumps([{**r, "id": f"r{i}"} for i, r in enumerate(records(2))]).encode()
    rows = codecs.decode(schema, body, JSON)
    outputs = np.array([1.5, 2.0])
    assert json.loads(codecs.encode(schema, rows, outputs, JSON))["predictions"] == [
        {"id": "r0", "prediction": 1.5},
        {"id": "r1", "prediction": 2.0},
    ]
    assert codecs.encode(schema, rows, outputs, CSV) == "r0,1.5\nr1,2.0\n"


def test_fewer_outputs_than_records_is_an_error_not_a_shorter_answer(regression):
    rows = codecs.decode(regression.schema, sample.PAYLOADS[CSV], CSV)
    with pytest.raises(ValueError):
        codecs.encode(regression.schema, rows, np.array([1.0, 2.0]), JSON)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"columns": ["x", "a", "a"], "data": [[1, 2, 3]]}, "columns lists 'a' twice"),
        ({"columns": ["a", "b"], "data": [5]}, "data row 1 has a int; expected 2"),
        (
            {"area_m2": [1, 2], "rooms": [1, 2, 3]},
            "column-oriented JSON needs lists of one length: 'area_m2' has 2, 'rooms' has 3",
        ),
    ],
)
def test_column_oriented_bodies_are_400s_naming_what_is_wrong(classification, body, message):
    with pytest.raises(HTTPError) as err:
        codecs.decode(classification.schema, json.dumps(body).encode(), JSON)
    assert (err.value.status, err.value.message) == (400, message)


def test_a_long_column_list_with_a_repeat_is_refused_in_one_pass(classification):
    """The attack: 100,000 names (1 MB) whose last repeats the first. Searching each
    name's prefix took 8 s for 40,000 and froze the worker past gunicorn's timeout at
    120,000; one pass takes milliseconds. The bound is 100x that, not a speed target."""
    import time

    columns = [f"c{i}" for i in range(100_000)] + ["c0"]
    body = json.dumps({"columns": columns, "data": [[0] * len(columns)]}).encode()
    started = time.perf_counter()
    with pytest.raises(HTTPError) as err:
        codecs.decode(classification.schema, body, JSON)
    assert time.perf_counter() - started < 2.0
    assert (err.value.status, err.value.message) == (400, "columns lists 'c0' twice")


def test_a_csv_header_row_alone_is_a_400(classification):
    with pytest.raises(HTTPError) as err:
        codecs.decode(classification.schema, (",".join(FEATURES) + "\n").encode(), CSV)
    assert (err.value.status, err.value.message) == (400, "CSV body has a header row and no data")


def test_a_missing_field_lists_the_first_12_features_and_counts_the_rest():
    schema = SimpleNamespace(features=[f"f{i}" for i in range(14)])
    with pytest.raises(HTTPError) as err:
        codecs.rows_from_records(schema, [{}], "record")
    assert err.value.message == (
        "record 1 has no field 'f0'; the model's features are "
        "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11 and 2 more"
    )
    schema.features = schema.features[:12]
    with pytest.raises(HTTPError) as err:
        codecs.rows_from_records(schema, [{}], "record")
    assert err.value.message.endswith("f10, f11")


def test_a_non_finite_output_is_a_400_saying_why(regression):
    rows = codecs.decode(regression.schema, sample.PAYLOADS[CSV], CSV)
    with pytest.raises(HTTPError) as err:
        codecs.encode(regression.schema, rows, np.array([1.0, np.inf, 2.0]), JSON)
    assert err.value.message == (
        "record 2: the model's output is not finite (its values are far outside the "
        "training data's range, or the model's weights are broken)"
    )
