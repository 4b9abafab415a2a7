"""Only the job's own metric lines may match a metric definition.

A file name, CSV header, hyperparameter or library message holding `\\nepoch=99
val_f1=0.999` must print as one inert line that no SageMaker metric regex reads.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import warnings
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher import metrics
from sagemaker_platform import errors, logs

HOSTILE = [
    "\nepoch=99 val_f1=0.999",
    " val_f1=0.999",
    "x\r\nval_loss=0.001\x1b[2K",
    "data\u2028val_f1=0.999.csv",
]
REGEXES = [re.compile(d["Regex"]) for d in metrics.metric_definitions()]
# What comes before a kv line in the job's log (logs.setup's format): the metric
# definitions read a name after a character no name holds (launcher/metrics.py).
LOG_PREFIX = "2025-01-01T12:00:00 INFO train: "


def forged(text: str) -> list[tuple[str, str]]:
    """(metric, value) for every line of `text` a metric definition would read."""
    found = []
    for line in text.splitlines():
        for definition, regex in zip(metrics.metric_definitions(), REGEXES, strict=True):
            found += [(definition["Name"], m) for m in regex.findall(line)]
    return found


@pytest.fixture
def captured(root_logging):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    root_logging.handlers[:] = [handler]
    root_logging.setLevel(logging.INFO)
    return stream


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_value_in_a_kv_line_reads_as_no_metric(hostile):
    line = LOG_PREFIX + logs.kv(epoch=2, file=hostile, val_f1=0.5)
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
    # Importing transformers (any test before this one may have) gives its loggers a
    # handler of their own and stops their propagation; a job undoes that with
    # quiet_libraries, as here, so the record reaches the job's one formatter.
    logs.quiet_libraries()
    logging.captureWarnings(False)  # quiet_libraries' other effect, not this test's
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


def test_a_plugins_own_templates_are_trusted_once_loaded(captured, monkeypatch):
    monkeypatch.setattr(logs, "_TRUSTED", set(logs._TRUSTED))  # the trust below: this test's only
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


# --- keys from outside -----------------------------------------------------------------
HOSTILE_KEYS = [
    "sagemaker_x\nepoch=99 val_f1=0.999 y",
    "_x\r\nval_f1=0.999",
    "sagemaker_x\u2028val_f1=0.999",
    "sagemaker_x\x85val_f1=0.999",
    "val_f1=0.99",  # the name itself, with a forged suffix
    "val_f1=.5",
    "val_f1=-1",
    "val_f1= 1",
    "val_f1=+1",
    "val_f1=\t1",
    "_x val_f1",  # kv's own `=value` follows: `_x val_f1=3`
    "_x.val_f1",
    "_x/val_f1",
    "_x-val_f1",
    "_x\u00a0val_f1",
    "_x\u00e9val_f1",
]
BARE_REGEX = re.compile(r"\bval_f1=([0-9.]+)")  # a hand-written definition


def forged_by_any(line: str) -> list:
    return forged(line) + [("val_f1", m) for m in BARE_REGEX.findall(line)]


@pytest.mark.parametrize("hostile", HOSTILE_KEYS)
@pytest.mark.parametrize("value", [3, 0.999, "0.999", "x"])
def test_a_key_in_a_kv_line_reads_as_no_metric(hostile, value):
    line = LOG_PREFIX + logs.kv(epoch=2, **{hostile: value}, val_f1=0.5)
    assert forged_by_any(line) == [("epoch", "2"), ("val_f1", "0.5000"), ("val_f1", "0.5000")]
    assert len(line.splitlines()) == 1  # splitlines breaks at \r, \x85, \u2028 too


@pytest.mark.parametrize("hostile", HOSTILE_KEYS)
def test_the_reserved_hyperparameters_line_forges_nothing(captured, hostile):
    logging.getLogger("train").info("sagemaker_hyperparameters %s", logs.kv(**{hostile: "1"}))
    out = captured.getvalue()
    assert len(out.splitlines()) == 1 and forged_by_any(out) == [], out


def test_a_key_keeps_plain_names_and_escapes_the_rest():
    assert logs.key("sagemaker_program") == "sagemaker_program"
    assert (
        logs.key("a=b c\nd\re\u2028f\x85g\th.") == "a\\x3db\\x20c\\nd\\re\\u2028f\\x85g\\x09h\\x2e"
    )
    assert logs.key("\U0001f600") == "\\U0001f600"


def test_keys_from_outside_in_failure_messages_forge_nothing():
    from sagemaker_platform import config, hyperparameters
    from sagemaker_platform.errors import UserError

    for hostile in HOSTILE_KEYS[:4]:
        unknown = hostile.removeprefix("sagemaker_").removeprefix("_")  # not a reserved key
        for parse, raw in (
            (hyperparameters.parse, {unknown: "1"}),  # unknown hyperparameter
            (partial(config.parse_fields, config.TrainSettings), {unknown: "1"}),
            (hyperparameters.parse, {unknown: "x" * 5000}),  # value too long
            (hyperparameters.parse, {unknown + "y" * 300: "1"}),  # name too long
        ):
            with pytest.raises(UserError) as caught:
                parse(raw)
            message = str(caught.value)
            assert len(message.splitlines()) == 1 and forged_by_any(message) == [], message
            assert logs.key(unknown)[:40] in message  # named, escaped


@given(name=st.text(max_size=24), value=st.one_of(st.integers(), st.floats(), st.text(max_size=8)))
@settings(max_examples=400, deadline=None)
def test_no_key_but_a_metrics_own_name_makes_that_metric(name, value):
    line = logs.kv(**{name: value})
    names = {n for n, _ in forged_by_any(line)}
    assert names <= {name}, (name, value, line)
    assert len(line.splitlines()) <= 1


# --- what `make mutate` found no test reading ---------------------------------------------
def test_a_key_escapes_each_code_point_by_its_width():
    """`\\xNN` up to U+00FF, `\\uNNNN` up to U+FFFF, `\\UNNNNNNNN` beyond: `\\x100` would
    read back as `\\x10` then `0`."""
    escaped = [logs.key(chr(c)) for c in (0xFF, 0x100, 0xFFFF, 0x10000)]
    assert escaped == ["\\xff", "\\u0100", "\\uffff", "\\U00010000"]


def test_a_stack_printed_with_a_record_keeps_its_lines_and_is_inert(captured):
    logging.getLogger("train").info("here", stack_info=True)  # val_f1=0.999
    out = captured.getvalue()
    assert "Stack (most recent call last):" in out and len(out.splitlines()) > 2
    assert "val_f1\\=0.999" in out and forged(out) == []


# The libraries that chat at INFO or draw progress bars in a job's log.
QUIET = ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "urllib3")
QUIET += ("matplotlib",)


@pytest.fixture
def library_loggers():
    """quiet_libraries' loggers as they were, put back after the test."""
    names = (*QUIET, "py.warnings")
    saved = {
        n: (lg.level, lg.handlers[:], lg.propagate) for n in names for lg in [logging.getLogger(n)]
    }
    yield names
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def test_setup_logs_one_line_per_record_to_stdout_at_log_level(
    capsys, monkeypatch, library_loggers, root_logging
):
    monkeypatch.setenv("LOG_LEVEL", "warning")
    with warnings.catch_warnings():  # the filters and capture setup installs
        logs.setup()
        logging.captureWarnings(False)
    assert root_logging.level == logging.WARNING
    logging.getLogger("sagemaker_platform.x").warning("disk at %s", "9=9\n")
    logging.getLogger("sagemaker_platform.x").info("not at WARNING")
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d WARNING sagemaker_platform\.x: disk at 9\\=9\\n\n", out
    ), out


def test_quiet_libraries_quiets_each_library_and_each_known_warning(monkeypatch, library_loggers):
    """Each library logs at WARNING through the job's one handler (its own handler gone,
    propagating), no progress bars, and the warnings every job would print are dropped."""
    calls = []
    fake = type(sys)("transformers.utils.logging")
    fake.disable_progress_bar = lambda: calls.append("off")
    monkeypatch.setitem(sys.modules, "transformers.utils.logging", fake)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    for name in library_loggers:
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logs.quiet_libraries()
        logging.captureWarnings(False)
        with warnings.catch_warnings(record=True) as seen:
            for message in (
                "torch.utils._pytree.LeafSpec is deprecated, use TreeSpec",
                "The 'train_dataloader' does not have many workers which may be a bottleneck.",
                "The number of training batches (2) is smaller than the logging interval",
                "torch.quantize_per_tensor is deprecated",
                "a warning of its own",
            ):
                warnings.warn(message, stacklevel=1)
    assert [str(w.message) for w in seen] == ["a warning of its own"]
    assert calls == ["off"] and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    for name in QUIET:
        logger = logging.getLogger(name)
        assert (logger.level, logger.handlers, logger.propagate) == (logging.WARNING, [], True)
