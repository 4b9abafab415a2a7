import json
import re

import pytest

from sagemaker_platform import contract
from sagemaker_platform.errors import UserError


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    (tmp_path / "input" / "config").mkdir(parents=True)
    return tmp_path


def test_default_base_dir(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_BASE_DIR", raising=False)
    assert str(contract.model_dir()) == "/opt/ml/model"


def test_paths_follow_the_base_dir(base):
    assert contract.model_dir() == base / "model"
    assert contract.failure_path() == base / "output" / "failure"
    assert contract.channel_dir("train") == base / "input" / "data" / "train"
    assert contract.checkpoints_dir() == base / "checkpoints"


def test_hyperparameters_become_strings(base):
    (base / "input/config/hyperparameters.json").write_text(
        json.dumps({"epochs": 3, "pooling": "cls"})
    )
    assert contract.read_hyperparameters() == {"epochs": "3", "pooling": "cls"}


def test_broken_json_is_named(base):
    (base / "input/config/hyperparameters.json").write_text("{epochs: 3")
    with pytest.raises(ValueError, match="hyperparameters.json is not valid JSON") as caught:
        contract.read_hyperparameters()
    # The job's input, not a bug: reported as a plain reason, without a traceback first.
    assert isinstance(caught.value, UserError)


def test_a_number_too_long_to_convert_is_named_not_a_traceback(base):
    """json.loads raises a plain ValueError (not a JSONDecodeError) for an integer of more
    than 4,300 digits: still the job's input, still a one-line reason."""
    (base / "input/config/hyperparameters.json").write_text('{"epochs": ' + "9" * 5000 + "}")
    with pytest.raises(UserError, match="hyperparameters.json is not valid JSON.*4300 digits"):
        contract.read_hyperparameters()


def test_resource_config(base):
    assert contract.read_resource_config().num_nodes == 1
    (base / "input/config/resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    )
    rc = contract.read_resource_config()
    assert (rc.node_rank, rc.num_nodes, rc.master_host) == (1, 2, "algo-1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["algo-1"], "resourceconfig.json holds a JSON list; expected an object"),
        ({"hosts": {"algo-1": 1}}, "resourceconfig.json: hosts is {'algo-1': 1}; expected a list"),
        ({"hosts": ["algo-1", 2]}, "expected a list of host names"),
        ({"hosts": ["algo-1", "algo-1"]}, "resourceconfig.json: hosts lists a host twice"),
        ({"hosts": ["a"], "current_host": "b"}, "current_host 'b' is not in hosts ['a']"),
        ({"hosts": ["a"], "network_interface_name": ["eth0"]}, "network_interface_name is"),
    ],
)
def test_a_resource_config_of_the_wrong_shape_is_a_reason_not_a_crash(base, raw, message):
    """A list where an object belongs raised AttributeError (and the failure file went
    unwritten); a host named twice made a world of 3 on 2 hosts, waiting out its timeout."""
    (base / "input/config/resourceconfig.json").write_text(json.dumps(raw))
    with pytest.raises(contract.ContractFileError, match=re.escape(message)):
        contract.read_resource_config()


def test_channel_lookup_accepts_training(base):
    assert contract.find_channel(contract.TRAIN_CHANNELS) is None
    (base / "input/data/training").mkdir(parents=True)
    assert contract.find_channel(contract.TRAIN_CHANNELS).name == "training"


def test_container_paths_ignore_a_local_base_dir(base):
    # The launcher names container-side paths while SAGEMAKER_BASE_DIR points elsewhere.
    assert contract.as_container_path(contract.checkpoints_dir()) == "/opt/ml/checkpoints"
    assert contract.as_container_path(contract.tensorboard_dir()) == "/opt/ml/output/tensorboard"


def test_nothing_else_spells_opt_ml():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    offenders = [
        str(p)
        for root in (repo / "model", repo / "launcher")
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in ("", ".py", ".conf")
        and p.name != "contract.py"
        and "/opt/ml" in p.read_text(errors="ignore")
    ]
    assert offenders == []


def test_relative_base_dir_becomes_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", "local/tree")
    assert contract.model_dir() == tmp_path / "local" / "tree" / "model"


def test_input_data_config_missing_reads_as_file_and_replicated(base):
    configs = contract.read_input_data_config()
    assert configs == {}
    train = contract.channel_config(configs, "train")
    assert (train.input_mode, train.distribution, train.sharded) == (
        "File",
        "FullyReplicated",
        False,
    )


def test_input_data_config_is_typed_per_channel(base):
    # The shape SageMaker writes: one object per channel, every key optional but the mode.
    (base / "input/config/inputdataconfig.json").write_text(
        json.dumps(
            {
                "train": {
                    "ContentType": "text/csv",
                    "TrainingInputMode": "FastFile",
                    "S3DistributionType": "ShardedByS3Key",
                    "RecordWrapperType": "None",
                },
                "validation": {"TrainingInputMode": "File"},
            }
        )
    )
    configs = contract.read_input_data_config()
    assert configs["train"] == contract.ChannelConfig(
        input_mode="FastFile",
        distribution="ShardedByS3Key",
        content_type="text/csv",
        record_wrapper="None",
    )
    assert configs["train"].sharded and not configs["validation"].sharded
    assert configs["validation"].distribution == "FullyReplicated"
    assert contract.channel_config(configs, "pretrained") == contract.ChannelConfig()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"train": {"TrainingInputMode": "Stream"}},
            "channel 'train' has TrainingInputMode='Stream'",
        ),
        (
            {"val": {"S3DistributionType": "Sharded"}},
            "channel 'val' has S3DistributionType='Sharded'; expected one of FullyReplicated",
        ),
        (["train"], "must map each channel name to an object"),
        ({"train": "File"}, "must map each channel name to an object"),
    ],
)
def test_a_bad_input_data_config_names_the_channel_and_key(base, spec, message):
    (base / "input/config/inputdataconfig.json").write_text(json.dumps(spec))
    with pytest.raises(UserError, match=message):
        contract.read_input_data_config()
