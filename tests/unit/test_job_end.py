"""No training job ends 0 without a model: an exit from inside the job is a failure with a
reason, and rank 0 must have written model.ckpt and plugin.json."""

from __future__ import annotations

import sys

import pytest

from sagemaker_platform import errors, training
from sagemaker_platform.errors import UserError


@pytest.mark.parametrize("code", [0, None, False, 3, "bye"])
def test_an_exit_from_inside_the_job_fails_it_with_a_reason(tmp_path, code):
    def job():
        sys.exit(code)

    failure = tmp_path / "output" / "failure"
    assert errors.run_job(job, lambda: failure) == 1
    reason = failure.read_text().splitlines()[0]
    assert reason.startswith(f"the job's code called sys.exit({code!r}) before the job finished")
    assert "SystemExit" in failure.read_text()  # the traceback says where


def test_a_job_that_returns_still_exits_0(tmp_path):
    failure = tmp_path / "output" / "failure"
    assert errors.run_job(lambda: None, lambda: failure) == 0
    assert not failure.exists()


def test_a_model_directory_without_weights_or_manifest_fails_the_job(tmp_path):
    model = tmp_path / "model"
    with pytest.raises(UserError, match=r"wrote no model: model/model.ckpt, model/plugin.json"):
        training.check_model_written(model)
    model.mkdir()
    (model / "plugin.json").write_text("{}")
    with pytest.raises(UserError, match=r"wrote no model: model/model.ckpt is missing"):
        training.check_model_written(model)
    (model / "model.ckpt").write_bytes(b"")
    with pytest.raises(UserError, match=r"model/model.ckpt is empty"):
        training.check_model_written(model)
    (model / "model.ckpt").write_bytes(b"weights")
    training.check_model_written(model)
