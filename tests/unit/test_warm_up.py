"""Warm-up sends the plug-in's sample request through decode, predict and encode, as a
request goes: /ping says ready only for a model that answers, and a
model that cannot fails its worker's start with the reason in one line."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from sagemaker_platform import logs
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, HTTPError
from sagemaker_platform.config import ServeConfig
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import Plugin
from sagemaker_platform.service import Service


class Scaler(Plugin):
    """Doubles numbers. `broken` names the step that fails for the sample request."""

    name = "scaler"
    accept_types = (JSON, JSONLINES, CSV)

    def __init__(self, broken: str = "", sample=(b"[1.5]", JSON)):
        self.broken, self.sample, self.calls = broken, sample, []

    def load(self, model_dir, runtime):
        return 2.0

    def sample_request(self, model):
        return self.sample

    def decode(self, model, body, content_type, options):
        self.calls.append(("decode", content_type))
        if self.broken == "decode":
            raise HTTPError(400, "record 1: column 'x' has 'abc'")
        return super().decode(model, body, content_type, options)

    def predict(self, model, records):
        self.calls.append(("predict", len(records)))
        if self.broken == "predict":
            raise IndexError("index out of range in self")
        if self.broken == "count":
            return []
        return [model * r for r in records]

    def encode(self, model, records, outputs, accept, options):
        self.calls.append(("encode", accept))
        if self.broken == accept:
            raise ValueError("the model's class probabilities are not finite: [nan]")
        return json.dumps(list(outputs))


def start(plugin: Plugin, tmp_path) -> tuple[Service, list[BaseException]]:
    """A service on `plugin`, once it is ready or has failed to load (its errors)."""
    errors: list[BaseException] = []
    failed = threading.Event()

    def on_load_error(exc: BaseException) -> None:
        errors.append(exc)
        failed.set()

    service = Service(
        ServeConfig(workers=1, threads=1), tmp_path, on_load_error=on_load_error, plugin=plugin
    )
    deadline = time.monotonic() + 10
    while not (service.engine.ready or failed.is_set()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return service, errors


def test_the_sample_goes_through_decode_predict_and_every_encode(tmp_path):
    plugin = Scaler()
    service, errors = start(plugin, tmp_path)
    assert service.healthy() and not errors
    assert plugin.calls == [
        ("decode", JSON),
        ("predict", 1),
        ("encode", JSON),
        ("encode", JSONLINES),
        ("encode", CSV),
    ]
    body, _ = service.invoke(b"[2]", JSON, JSON)
    assert json.loads(body) == [4.0]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("decode", "got 400 at decode: record 1: column 'x' has 'abc'"),
        ("predict", "failed at predict: IndexError: index out of range in self"),
        ("count", "failed at predict: RuntimeError: 0 outputs for 1 records"),
        (CSV, "failed at encode (text/csv): ValueError: the model's class probabilities"),
    ],
)
def test_a_sample_that_fails_keeps_ping_down_and_fails_the_worker(tmp_path, broken, reason):
    service, errors = start(Scaler(broken), tmp_path)
    assert not service.healthy()
    assert len(errors) == 1 and isinstance(errors[0], UserError)
    assert str(errors[0]).startswith("warm-up: the plug-in's sample request ")
    assert reason in str(errors[0])


def test_a_sample_of_a_type_the_plugin_does_not_take_fails_the_worker(tmp_path):
    service, errors = start(Scaler(sample=(b"a,b", CSV)), tmp_path)
    assert not service.healthy()
    assert "got 415 at decode: unsupported Content-Type 'text/csv'" in str(errors[0])


def test_a_plugin_without_a_sample_is_ready_after_its_warm_up(tmp_path):
    plugin = Scaler(broken="predict", sample=None)  # a predict no sample reaches
    service, errors = start(plugin, tmp_path)
    assert service.healthy() and not errors and plugin.calls == []


def test_the_boot_failure_is_logged_in_one_line(tmp_path, caplog):
    """The reason, not a traceback: the worker exits and gunicorn stops the server."""
    handler = logging.StreamHandler()
    handler.setFormatter(logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    with caplog.at_level(logging.INFO, logger="serve"):
        start(Scaler("predict"), tmp_path)
    failures = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is None
    line = handler.format(failures[0])
    assert line == (
        "ERROR serve: model failed to load: warm-up: the plug-in's sample request failed at "
        "predict: IndexError: index out of range in self"
    )


def test_a_bug_outside_the_model_still_logs_its_traceback(tmp_path, caplog):
    class Broken(Scaler):
        def load(self, model_dir, runtime):
            raise ImportError("no module named 'missing'")

    with caplog.at_level(logging.INFO, logger="serve"):
        _, errors = start(Broken(), tmp_path)
    failure = next(r for r in caplog.records if "failed to load" in r.getMessage())
    assert failure.getMessage() == "model failed to load: ImportError: no module named 'missing'"
    assert failure.exc_info is not None
    assert isinstance(errors[0], ImportError)
