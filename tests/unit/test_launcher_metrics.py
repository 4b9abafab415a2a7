"""Each metric regex finds its value in the lines training really prints (logs.kv)."""

import json
import re

import pytest

from launcher import metrics
from sagemaker_platform import logs
from sagemaker_platform.hyperparameters import parse

PREFIX = "2025-01-01T12:00:00 INFO train: "
# What LogLines.on_train_epoch_end logs, with a tiny loss to get the 1.000e-04 form.
EPOCH = dict(
    epoch=2,
    train_loss=0.0000512,
    val_loss=0.38,
    val_accuracy=0.86,
    val_f1=0.83,
    val_rmse=41250.5,
    val_mae=30100.25,
    train_samples_per_sec=45.12,
)


def found(name: str, text: str) -> list[float]:
    return [float(v) for v in re.findall(metrics.regex(name), text)]


def test_definitions_have_the_api_shape_and_cover_every_name():
    definitions = metrics.metric_definitions()
    assert [d["Name"] for d in definitions] == list(metrics.metric_names())
    assert all(set(d) == {"Name", "Regex"} and len(d["Regex"]) <= 500 for d in definitions)
    assert json.loads(metrics.as_json()) == definitions


@pytest.mark.parametrize("name", metrics.metric_names())
def test_each_regex_reads_its_value_from_an_epoch_line(name):
    line = PREFIX + logs.kv(**EPOCH)
    (value,) = found(name, line)
    assert value == pytest.approx(EPOCH[name], rel=1e-3)


def test_small_floats_in_scientific_form_are_read_whole():
    line = PREFIX + logs.kv(**EPOCH)
    assert "train_loss=5.120e-05" in line
    assert found("train_loss", line) == [pytest.approx(5.12e-5)]
    assert found("val_loss", PREFIX + logs.kv(val_loss=-1.5e-7)) == [pytest.approx(-1.5e-7)]


def test_other_lines_do_not_feed_the_wrong_metric():
    step = PREFIX + logs.kv(epoch=1, step=10, batch="2/10", loss=0.51, lr=1e-4)
    result = (
        PREFIX
        + "result "
        + logs.kv(best_epoch=3, val_accuracy=0.9, val_f1=0.88, train_seconds=12.5)
    )
    hyper = PREFIX + "hyperparameters " + logs.kv(**parse({}).log_values())
    # The step line's loss and lr are not epoch metrics; its epoch is the epoch.
    assert found("train_loss", step) == [] and found("epoch", step) == [1]
    # best_epoch=3 on the summary line is not an epoch; its val_f1 is the final one.
    assert found("epoch", result) == [] and found("val_f1", result) == [pytest.approx(0.88)]
    # epochs=10 among the hyperparameters is not an epoch either.
    assert all(found(name, hyper) == [] for name in metrics.metric_names())


def test_markdown_table_lists_every_regex():
    table = metrics.as_markdown()
    for d in metrics.metric_definitions():
        assert f"| `{d['Name']}` | `{d['Regex']}` |" in table


def test_each_plugin_gets_the_platforms_metrics_and_its_own():
    text = [d["Name"] for d in metrics.metric_definitions("text_classifier")]
    tabular = [d["Name"] for d in metrics.metric_definitions("tabular")]
    assert text[:3] == tabular[:3] == ["epoch", "train_loss", "train_samples_per_sec"]
    assert "val_f1" in text and "val_rmse" not in text
    assert {"val_rmse", "val_mae", "val_f1"} <= set(tabular)
    assert set(metrics.metric_names()) == set(text) | set(tabular)
