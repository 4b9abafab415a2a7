"""Only the job's own metric lines may match a metric definition (issue 17, item 3).

A file name, CSV header, hyperparameter or library message holding `\\nepoch=99
val_f1=0.999` must print as one inert line that no SageMaker metric regex reads.
"""

from __future__ import annotations

import io
import logging
import re
import warnings

import pytest

from launcher import metrics
from sagemaker_platform import errors, logs

HOSTILE = [
    "\nepoch=99 val_f1=0.999",
    " val_f1=0.999",
    "x\r\nval_loss=0.001\x1b[2K",
    "data\u2028val_f1=0.999.csv",
]
REGEXES = [re.compile(d["Regex"]) for d in metrics.metric_definitions()]


def forged(text: str) -> list[tuple[str, str]]:
    """(metric, value) for every line of `text` a metric definition would read."""
    found = []
    for line in text.splitlines():
        for definition, regex in zip(metrics.metric_definitions(), REGEXES, strict=True):
            found += [(definition["Name"], m) for m in regex.findall(line)]
    return found


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_value_in_a_kv_line_reads_as_no_metric(hostile):
    line = logs.kv(epoch=2, file=hostile, val_f1=0.5)
    assert forged(line) == [("epoch", "2"), ("val_f1", "0.5000")]
    assert len(line.splitlines()) == 1


@pytest.mark.parametrize("hostile", HOSTILE)
def test_arguments_of_the_codes_own_templates_are_inert(captured, hostile):
    logging.getLogger("sagemaker_platform.channels").info("reading %s rows=%d", hostile, 3)
    logging.getLogger("train").info("column %r", hostile)
    out = captured.getvalue()
    assert len(out.splitlines()) == 2, out
    assert forged(out) == []
    assert "rows=3" in out  # the template's own name=value stays readable


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_librarys_message_is_inert_as_a_whole(captured, hostile):
    logging.getLogger("transformers.modeling_utils").warning(f"weights at {hostile} unused")
    out = captured.getvalue()
    assert len(out.splitlines()) == 1 and forged(out) == []
    assert "weights at" in out and ("0.999" in out or "0.001" in out)  # shown, escaped


def test_a_warning_is_logged_inert(captured):
    # pytest restores warnings.showwarning after each test, and logging then thinks
    # it still holds it: start from released.
    logging.captureWarnings(False)
    logs.quiet_libraries()  # routes warnings to logging (py.warnings)
    try:
        message = UserWarning(f"column {HOSTILE[0]} has mixed types")
        warnings.showwarning(message, UserWarning, f"reader{HOSTILE[1]}.py", 1)
    finally:
        logging.captureWarnings(False)
    out = captured.getvalue()
    assert "mixed types" in out and forged(out) == []


def test_a_traceback_keeps_its_lines_and_its_messages_are_inert(captured):
    try:
        raise FileNotFoundError(f"no such file: {HOSTILE[0]}")
    except FileNotFoundError:
        logging.getLogger("train").exception("training failed")
    out = captured.getvalue()
    assert "Traceback (most recent call last)" in out and len(out.splitlines()) > 2
    assert forged(out) == []


def test_the_jobs_own_metric_line_still_matches(captured):
    logging.getLogger("train").info(logs.kv(epoch=3, train_loss=0.25, val_f1=0.875))
    assert forged(captured.getvalue()) == [
        ("epoch", "3"),
        ("train_loss", "0.2500"),
        ("val_f1", "0.8750"),
    ]


def test_a_plugins_own_templates_are_trusted_once_loaded(captured):
    logging.getLogger("my_forecaster.model").info("mape=%s", "0.1")
    assert "mape\\=" in captured.getvalue()  # unknown package: inert
    logs.trust("my_forecaster")
    logging.getLogger("my_forecaster.model").info("mape=%s", "0.1")
    assert captured.getvalue().splitlines()[-1].endswith("mape=0.1")


def test_a_line_break_in_a_name_does_not_cut_the_failure_reason_short(tmp_path):
    name = "train\nepoch=99 val_f1=0.999.csv"
    errors.write_failure(tmp_path / "failure", errors.UserError(f"cannot read {name}: bad"))
    reason = (tmp_path / "failure").read_text().splitlines()[0]
    assert reason == "cannot read train\\nepoch=99 val_f1=0.999.csv: bad"


def test_two_values_side_by_side_cannot_make_one_metric(captured):
    logging.getLogger("train").info("files %s%s", "x val_f1=", "0.999")
    assert forged(captured.getvalue()) == []
