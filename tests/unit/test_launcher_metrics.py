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
        cell = d["Regex"].replace("|", "\\|")  # a bare | would end the table cell
        assert f"| `{d['Name']}` | `{cell}` |" in table
    for row in table.splitlines():
        assert len(re.split(r"(?<!\\)\|", row)) == 4, row  # two cells, whatever the regex holds


def test_each_plugin_gets_the_platforms_metrics_and_its_own():
    text = [d["Name"] for d in metrics.metric_definitions("text_classifier")]
    tabular = [d["Name"] for d in metrics.metric_definitions("tabular")]
    assert text[:3] == tabular[:3] == ["epoch", "train_loss", "train_samples_per_sec"]
    assert "val_f1" in text and "val_rmse" not in text
    assert {"val_rmse", "val_mae", "val_f1"} <= set(tabular)
    assert set(metrics.metric_names()) == set(text) | set(tabular)


# --- one regex dialect, whichever engine SageMaker runs -------------------------------------
# What POSIX ERE, Java and Python read alike: no class escapes (\b \d \s \w), no `(?`
# constructs, no lazy or possessive quantifiers, no backslash inside brackets (POSIX
# reads it as itself, Java and Python as an escape).
_PORTABLE_ESCAPES = set(".[\\()*+?{|^$")


def portability_problems(regex: str) -> list[str]:
    problems, i, groups = [], 0, 0
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1 : i + 2]
            if nxt not in _PORTABLE_ESCAPES:
                problems.append(f"\\{nxt} at {i}")
            i += 2
            continue
        if c == "[":
            end = regex.index("]", i + 2)  # `[]...]` and `[^]...]` hold a ] first
            if "\\" in regex[i:end] or "[:" in regex[i:end]:
                problems.append(f"backslash or class name in {regex[i : end + 1]} at {i}")
            i = end + 1
            continue
        if c == "(":
            groups += 1
            if regex[i + 1 : i + 2] == "?":
                problems.append(f"(? at {i}")
        if c in "*+?}" and regex[i + 1 : i + 2] in ("?", "+"):
            problems.append(f"lazy or possessive {c}{regex[i + 1]} at {i}")
        i += 1
    if groups != 1:
        problems.append(f"{groups} groups: the value must be the only one")
    return problems


def test_the_old_regexes_were_not_portable():
    """What this check finds (the regexes before they were made one dialect)."""
    old = r"\bepoch=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    assert portability_problems(old) == [
        "\\b at 0",
        "(? at 29",
        "2 groups: the value must be the only one",
    ]


@pytest.mark.parametrize("definition", metrics.metric_definitions(), ids=lambda d: d["Name"])
def test_each_regex_reads_alike_in_posix_ere_java_and_python(definition):
    assert portability_problems(definition["Regex"]) == []
    assert re.compile(definition["Regex"]).groups == 1


def test_the_regexes_read_what_the_old_ones_read_from_the_platforms_lines():
    """Equivalent in Python on every line the platform prints (all have the log prefix)."""
    old_number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    lines = [
        PREFIX + logs.kv(**EPOCH),
        PREFIX + logs.kv(epoch=1, step=10, batch="2/10", loss=0.51, lr=1e-4),
        PREFIX + "result " + logs.kv(best_epoch=3, val_accuracy=0.9, val_f1=0.88),
        PREFIX + "hyperparameters " + logs.kv(**parse({}).log_values()),
        PREFIX + logs.kv(val_loss=-1.5e-7, train_loss=12.0, val_f1=1, val_rmse=3.25e12),
        PREFIX + logs.kv(val_mae=float("nan"), val_accuracy=float("inf")),
    ]
    for name in metrics.metric_names():
        old = re.compile(rf"\b{name}={old_number}")
        for line in lines:
            assert found(name, line) == [float(v) for v in old.findall(line)], (name, line)


def test_a_name_with_characters_special_to_a_regex_is_matched_as_itself():
    line = PREFIX + logs.kv(**{"val_top1.acc": 0.5, "val_top1xacc": 0.7})
    assert found("val_top1.acc", line) == [0.5]
    assert portability_problems(metrics.regex("val_top1.acc")) == []
