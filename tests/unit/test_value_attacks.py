"""Values that overflow, are not finite, or are not what they claim:
each is a 400 naming the record and the column, a one-line reason for the job, or drawn
as plain text; never a 500, a null in an answer, or a job that fails after training."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from plugins.tabular import plugin, sample
from sagemaker_platform import codecs as platform_codecs
from sagemaker_platform import evaluation
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, HTTPError
from sagemaker_platform.errors import UserError
from tests.unit.test_tabular import houses, loaded, records, rows_of


@pytest.fixture(scope="module")
def classification():
    return rows_of(houses())


@pytest.fixture(scope="module")
def regression():
    return rows_of(houses(), label_column="price")


def decode(rows, body, content_type=JSON):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return plugin.decode(loaded(rows), body, content_type, {})


def refused(rows, body, content_type=JSON) -> str:
    with pytest.raises(HTTPError) as err:
        decode(rows, body, content_type)
    assert err.value.status == 400
    return err.value.message


ONE = records(1)[0]
HUGE_INT = 10**400


# --- requests --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (HUGE_INT, r"record 1: column 'area_m2' has 1000+\.\.\., expected a finite number"),
        ("1" * 400, r"record 1: column 'area_m2' has '1+\.\.\., expected a finite number"),
        (1e308, r"record 1: column 'area_m2' has 1e\+308, expected a number within the model"),
        ("-1e308", r"record 1: column 'area_m2' has '-1e308', expected a number within the model"),
        (-1.7e308, r"column 'area_m2' has -1.7e\+308, expected a number within the model's range"),
        ("1e999", r"record 1: column 'area_m2' has '1e999', expected a finite number"),
    ],
    ids=["400-digits", "400-digit-string", "1e308", "-1e308-string", "-1.7e308", "1e999"],
)
def test_numbers_too_large_for_the_model_are_a_400_naming_the_column(
    classification, regression, value, message
):
    for rows in (classification, regression):
        assert re.search(message, refused(rows, [{**ONE, "area_m2": value}]))


def test_a_huge_value_in_every_content_type_is_a_400(classification):
    line = ",".join(str(ONE[c]) for c in sample.FEATURES).replace("54.0", "1e308", 1)
    assert "CSV row 1: column 'area_m2'" in refused(classification, line.encode(), CSV)
    body = (json.dumps({**ONE, "rooms": HUGE_INT}) + "\n").encode()
    assert "line 1: column 'rooms'" in refused(classification, body, JSONLINES)
    split = {"columns": sample.FEATURES, "data": [[ONE[c] for c in sample.FEATURES]]}
    split["data"][0][3] = 1e308
    assert "column 'distance_km'" in refused(classification, split)


def test_values_far_out_yet_finite_are_answered(classification, regression):
    for rows in (classification, regression):
        assert len(decode(rows, [{**ONE, "area_m2": 1e30, "rooms": "-1e20"}])) == 1


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([["area_m2"], "rooms"], "columns[0] is a JSON list; column names are strings"),
        (["area_m2", {"a": 1}], "columns[1] is a JSON dict; column names are strings"),
        (["area_m2", 5], "columns[1] is a JSON int"),
        (["area_m2", None], "columns[1] is a JSON NoneType"),
        (["area_m2", "area_m2"], "columns lists 'area_m2' twice"),
    ],
)
def test_column_names_that_are_not_names_are_a_400(classification, columns, message):
    body = {"columns": columns, "data": [[1, 2]]}
    assert message in refused(classification, body)


def test_a_non_finite_output_is_a_400_not_a_null(classification, regression):
    """Values the schema lets through that still overflow the network: the answer would
    be null, or a label picked among NaNs."""
    for rows, outputs in (
        (classification, np.array([[0.1, 0.7, 0.2], [math.nan, math.nan, math.nan]])),
        (regression, np.array([101.5, math.inf])),
    ):
        decoded = decode(rows, records(2))
        with pytest.raises(HTTPError, match="record 2: the model's output is not finite"):
            plugin.encode(loaded(rows), decoded, outputs, JSON, {})


def test_a_classifier_answer_is_never_picked_among_nans():
    with pytest.raises(ValueError, match="not finite"):
        platform_codecs.class_answer([math.nan, 0.5], ["a", "b"])
    assert platform_codecs.class_answer([0.25, 0.75], ["a", "b"])["label"] == "b"


# --- training ----------------------------------------------------------------------------
def test_regression_labels_that_overflow_are_refused_naming_file_and_row():
    frame = houses()
    frame.loc[3, "price"] = 1e308
    frame.loc[5, "price"] = -1e308
    with pytest.raises(UserError) as err:
        rows_of(frame, label_column="price")
    message = str(err.value)
    assert message.startswith("label column 'price' holds values too large to train on: ")
    assert "in train/houses.csv (data row 4)" in message or "(data row 6)" in message
    assert "\n" not in message


def test_regression_labels_whose_squares_overflow_float32_are_refused():
    frame = houses()
    frame["price"] = frame["price"] * 1e18  # each fits float32; their squared errors do not
    with pytest.raises(UserError, match="label column 'price' holds values too large"):
        rows_of(frame, label_column="price")
    frame["price"] = frame["price"] / 1e18 * 1e6  # prices in millionths: fine
    assert rows_of(frame, label_column="price").schema.task == "regression"


def test_a_validation_channel_label_that_overflows_is_refused_naming_it():
    val = houses(20, 1, "validation/houses.csv")
    val.loc[7, "price"] = 3e38 * 10
    with pytest.raises(UserError, match=r"in validation/houses.csv \(data row 8\)"):
        rows_of(houses(), val=val, label_column="price")


def test_a_feature_column_too_large_to_standardise_is_refused_naming_it():
    frame = houses()
    frame.loc[2, "distance_km"] = 1.5e308
    frame.loc[9, "distance_km"] = 1.6e308
    with pytest.raises(UserError, match=r"column 'distance_km' holds values too large"):
        rows_of(frame, validation_fraction=0.0)


def test_an_infinite_or_400_digit_feature_is_refused_as_not_finite():
    frame = houses()
    frame["rooms"] = frame["rooms"].astype(object)
    frame.loc[4, "rooms"] = "1" * 400
    with pytest.raises(UserError, match=r"column 'rooms' has '1+\.\.\. in train/houses.csv"):
        rows_of(frame)


# --- evaluation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names",
    [
        ["$\\foo{$", "b"],  # math text that does not parse
        ["$x$", "$$", "a$b$c"],
        ["\\textbf{x}", "x" * 5000, "%", "line\nbreak"],
    ],
)
def test_class_names_are_drawn_as_plain_text(tmp_path, names):
    k = len(names)
    y = np.arange(3 * k) % k
    report = evaluation.classification_evaluation(y, y[::-1], names, tmp_path)
    assert report["num_examples"] == 3 * k
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_class_names_are_plain_text_under_a_usetex_matplotlibrc(tmp_path):
    import matplotlib

    with matplotlib.rc_context({"text.usetex": True}):
        evaluation.plot_confusion_matrix([[1, 0], [0, 1]], ["$\\foo{$", "b"], tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_load_rows_is_untouched_for_ordinary_data():
    """The sample table trains as before: these checks refuse only what overflows."""
    rows = rows_of(houses(), label_column="price")
    assert np.isfinite(rows.train.numeric).all() and np.isfinite(rows.train.target).all()
