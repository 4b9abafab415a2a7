"""Where a job keeps its checkpoints: the folder itself, or a tuning trial's own subfolder."""

from __future__ import annotations

import logging

import pytest

from sagemaker_platform import hyperparameters
from sagemaker_platform.errors import UserError
from sagemaker_platform.training import checkpoints_dir

TRIAL = {"_tuning_objective_metric": "val_f1", "sagemaker_estimator_module": "x"}


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    monkeypatch.delenv("TRAINING_JOB_NAME", raising=False)
    return tmp_path


def test_a_plain_job_uses_the_folder_itself_whatever_its_name(base, monkeypatch):
    monkeypatch.setenv("TRAINING_JOB_NAME", "text-classifier-20260101120000")
    job = hyperparameters.parse({"sagemaker_program": "train"})
    assert job.tuning_objective is None
    assert checkpoints_dir(job) == base / "checkpoints"


def test_a_trial_uses_its_job_names_subfolder(base, monkeypatch, caplog):
    monkeypatch.setenv("TRAINING_JOB_NAME", "tune-1-003-ab12cd34")
    job = hyperparameters.parse(TRIAL)
    assert job.tuning_objective == "val_f1"
    with caplog.at_level(logging.INFO, logger="train"):
        assert checkpoints_dir(job) == base / "checkpoints" / "tune-1-003-ab12cd34"
    assert "trial=tune-1-003-ab12cd34" in caplog.text


def test_a_trial_without_a_job_name_keeps_the_folder_and_says_so(base, caplog):
    with caplog.at_level(logging.INFO, logger="train"):
        assert checkpoints_dir(hyperparameters.parse(TRIAL)) == base / "checkpoints"
    assert "reason=TRAINING_JOB_NAME is not set" in caplog.text


@pytest.mark.parametrize("name", ["../escape", "a/b", "-leading", "x" * 64])
def test_a_job_name_that_is_not_one_fails_naming_the_variable(base, monkeypatch, name):
    monkeypatch.setenv("TRAINING_JOB_NAME", name)
    with pytest.raises(UserError, match="TRAINING_JOB_NAME=.* is not a SageMaker job name"):
        checkpoints_dir(hyperparameters.parse(TRIAL))
