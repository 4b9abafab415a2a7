"""The SageMaker container contract: the only module that knows `/opt/ml`.

SageMaker runs `docker run IMAGE train` or `docker run IMAGE serve` and talks to the
container through a directory tree and environment variables. Every path and variable
name the rest of the code needs is defined here, computed in functions (nothing is read
or created at import time) so that tests can point `SAGEMAKER_BASE_DIR` at a temporary
tree.

    <base>/input/config/hyperparameters.json    every value is a string
    <base>/input/config/inputdataconfig.json    the channels and their settings
    <base>/input/config/resourceconfig.json     current_host, hosts, network interface
    <base>/input/data/<channel>/                the files of each channel
    <base>/model/                               what training leaves for serving
    <base>/models/<name>/model/                 a multi-model endpoint's models, each
                                                extracted by SageMaker before POST /models
    <base>/output/failure                       why training failed
    <base>/output/data/                         evaluation results
    <base>/checkpoints/                         synced to checkpoint_s3_uri by SageMaker
    <base>/checkpoints/<job name>/              a tuning job's trial checkpoints here
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import UserError

# --- environment variable names -------------------------------------------------------
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"

# Serving: set by SageMaker.
BIND_TO_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
SAFE_PORT_RANGE_ENV = "SAGEMAKER_SAFE_PORT_RANGE"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
BATCH_ENV = "SAGEMAKER_BATCH"
BATCH_STRATEGY_ENV = "SAGEMAKER_BATCH_STRATEGY"
MAX_CONCURRENT_TRANSFORMS_ENV = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"
# Set on a multi-model endpoint's containers (SageMaker's inference toolkit reads it).
SAGEMAKER_MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"

# Serving: set by the user on the model (documented in docs/serving.md's generated table).
WORKERS_ENV = "MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "MODEL_SERVER_TIMEOUT"
THREADS_ENV = "MODEL_SERVER_THREADS"
MAX_BATCH_SIZE_ENV = "MODEL_SERVER_MAX_BATCH_SIZE"
MAX_RECORDS_ENV = "MODEL_SERVER_MAX_RECORDS"
MAX_BATCH_DELAY_ENV = "MODEL_SERVER_MAX_BATCH_DELAY_MS"
PRECISION_ENV = "MODEL_SERVER_PRECISION"
DEVICE_ENV = "MODEL_SERVER_DEVICE"
TORCHSCRIPT_ENV = "MODEL_SERVER_TORCHSCRIPT"
# The kind of endpoint: realtime (default), async or serverless; set by the launcher's
# `deploy --mode`. Batch transform is recognised by SageMaker's own BATCH_ENV instead.
MODE_ENV = "MODEL_SERVER_MODE"
ASYNC_TIMEOUT_ENV = "MODEL_SERVER_ASYNC_TIMEOUT"
CLIENT_TIMEOUT_ENV = "MODEL_SERVER_CLIENT_TIMEOUT"
# A multi-model endpoint (MME): no model at start, models loaded by POST /models; and the
# memory its loaded models may take.
MULTI_MODEL_ENV = "MODEL_SERVER_MULTI_MODEL"
MME_MEMORY_ENV = "MODEL_SERVER_MME_MEMORY_MB"
# The request bodies one worker may hold at once (`inflight`).
MAX_INFLIGHT_ENV = "MODEL_SERVER_MAX_INFLIGHT_MB"

# Training, multi-host (set by the user on the job; docs/training.md's "Multi-host training"):
# host addresses to use instead of DNS ("algo-1=10.0.0.5,algo-2=10.0.0.6"), the rendezvous
# port on the first host, and how long (seconds) a host waits for the others.
HOST_ADDRESSES_ENV = "TRAINING_HOST_ADDRESSES"
MASTER_PORT_ENV = "TRAINING_MASTER_PORT"
DIST_TIMEOUT_ENV = "TRAINING_DIST_TIMEOUT"

# Training: set by SageMaker in every training container (the TrainingJobName of
# CreateTrainingJob; a tuning job's trials each have their own).
TRAINING_JOB_NAME_ENV = "TRAINING_JOB_NAME"
# The key a hyperparameter tuning job adds to each trial's hyperparameters.json.
TUNING_OBJECTIVE_KEY = "_tuning_objective_metric"

# Training, experiment tracking (set by the user, or by the launcher, on the job's
# Environment): an MLflow tracking server URL or a SageMaker managed MLflow ARN, and the
# experiment the runs go to.
MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
MLFLOW_EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"

DEFAULT_PORT = 8080
TRAIN_CHANNELS = ("train", "training")
VALIDATION_CHANNELS = ("validation", "val")
PRETRAINED_CHANNEL = "pretrained"


# --- paths ----------------------------------------------------------------------------
def base_dir() -> Path:
    """Absolute, so that child processes with another working directory agree."""
    return Path(os.environ.get(BASE_DIR_ENV, DEFAULT_BASE_DIR)).absolute()


def config_dir() -> Path:
    return base_dir() / "input" / "config"


def hyperparameters_path() -> Path:
    return config_dir() / "hyperparameters.json"


def input_data_config_path() -> Path:
    return config_dir() / "inputdataconfig.json"


def resource_config_path() -> Path:
    return config_dir() / "resourceconfig.json"


def data_dir() -> Path:
    return base_dir() / "input" / "data"


def channel_dir(name: str) -> Path:
    return data_dir() / name


def model_dir() -> Path:
    return base_dir() / "model"


def models_dir() -> Path:
    """Where a multi-model endpoint's models are: SageMaker extracts each one's
    model.tar.gz into models/<name>/model and names that folder in POST /models."""
    return base_dir() / "models"


def output_dir() -> Path:
    return base_dir() / "output"


def output_data_dir() -> Path:
    return output_dir() / "data"


def tensorboard_dir() -> Path:
    return output_dir() / "tensorboard"


def failure_path() -> Path:
    return output_dir() / "failure"


def checkpoints_dir() -> Path:
    return base_dir() / "checkpoints"


def training_job_name() -> str | None:
    """The job's name as SageMaker sets it in the container; None outside SageMaker."""
    return os.environ.get(TRAINING_JOB_NAME_ENV, "").strip() or None


def as_container_path(path: Path) -> str:
    """`path`, computed under base_dir(), as the container sees it: under /opt/ml.

    The launcher tells SageMaker container-side paths (checkpoints, TensorBoard) from a
    machine where SAGEMAKER_BASE_DIR may point at a local tree; this keeps those paths
    derived from the functions above instead of spelled out a second time.
    """
    return str(PurePosixPath(DEFAULT_BASE_DIR) / path.relative_to(base_dir()).as_posix())


# --- the JSON files under input/config -------------------------------------------------
class ContractFileError(UserError, ValueError):
    """A file SageMaker hands over (under input/config) that cannot be used as it is.

    A UserError, so the job's failure reason is the message alone: these files come
    from the job's definition (or a hand-written local test tree), not from this code.
    """


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number too long
        raise ContractFileError(f"{path.name} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ContractFileError(f"{path.name} is not valid JSON: nested too deeply") from None


def read_hyperparameters() -> dict[str, str]:
    """hyperparameters.json as a dict of strings (SageMaker sends every value as one)."""
    raw = _read_json(hyperparameters_path(), {})
    if not isinstance(raw, dict):
        raise ContractFileError("hyperparameters.json must hold a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def find_channel(names: tuple[str, ...]) -> Path | None:
    """The first of `names` that exists as a channel directory, else None."""
    for name in names:
        path = channel_dir(name)
        if path.is_dir():
            return path
    return None


# inputdataconfig.json, one object per channel:
#   {"train": {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key",
#              "RecordWrapperType": "None", "ContentType": "text/csv"}, ...}
FILE_MODE, FAST_FILE_MODE, PIPE_MODE = "File", "FastFile", "Pipe"
INPUT_MODES = (FILE_MODE, FAST_FILE_MODE, PIPE_MODE)
FULLY_REPLICATED, SHARDED_BY_S3_KEY = "FullyReplicated", "ShardedByS3Key"
DISTRIBUTIONS = (FULLY_REPLICATED, SHARDED_BY_S3_KEY)


@dataclass(frozen=True)
class ChannelConfig:
    """One channel of inputdataconfig.json: how SageMaker hands its files over."""

    # File: downloaded before the job starts; FastFile: streamed from S3 behind ordinary
    # files (this image reads both the same way); Pipe: a FIFO per epoch (not read here).
    input_mode: str = FILE_MODE
    # FullyReplicated: every host has every file; ShardedByS3Key: each host a part.
    distribution: str = FULLY_REPLICATED
    content_type: str | None = None
    record_wrapper: str = "None"  # RecordIO is for Pipe mode
    compression: str = "None"  # Gzip is for Pipe mode

    @property
    def sharded(self) -> bool:
        return self.distribution == SHARDED_BY_S3_KEY


def _choice(channel: str, raw: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ContractFileError(
            f"inputdataconfig.json: channel '{channel}' has {key}={value!r}; "
            f"expected one of {', '.join(allowed)}"
        )
    return value


def read_input_data_config() -> dict[str, ChannelConfig]:
    """inputdataconfig.json by channel name; {} when the file is missing (a local run:
    every channel then reads as File and FullyReplicated, see `channel_config`)."""
    raw = _read_json(input_data_config_path(), {})
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ContractFileError("inputdataconfig.json must map each channel name to an object")
    return {
        str(name): ChannelConfig(
            input_mode=_choice(name, spec, "TrainingInputMode", INPUT_MODES, FILE_MODE),
            distribution=_choice(name, spec, "S3DistributionType", DISTRIBUTIONS, FULLY_REPLICATED),
            content_type=spec.get("ContentType"),
            record_wrapper=str(spec.get("RecordWrapperType", "None")),
            compression=str(spec.get("CompressionType", "None")),
        )
        for name, spec in raw.items()
    }


def channel_config(configs: dict[str, ChannelConfig], name: str) -> ChannelConfig:
    """A channel's settings; File and FullyReplicated for one the file does not name."""
    return configs.get(name, ChannelConfig())


@dataclass(frozen=True)
class ResourceConfig:
    """resourceconfig.json: which host this is among the training cluster."""

    current_host: str = "algo-1"
    hosts: list[str] = field(default_factory=lambda: ["algo-1"])
    network_interface_name: str = "eth0"

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def num_nodes(self) -> int:
        return len(self.hosts)

    @property
    def master_host(self) -> str:
        return self.hosts[0]


def read_resource_config() -> ResourceConfig:
    """resourceconfig.json: an object whose `hosts` are distinct strings, among them
    `current_host`; a ContractFileError naming what is not (a list there, or a host
    twice, would otherwise fail deep in the cluster's set-up, or wait out its timeout)."""
    raw = _read_json(resource_config_path(), {})
    if not raw:
        return ResourceConfig()
    name = "resourceconfig.json"
    if not isinstance(raw, dict):
        raise ContractFileError(f"{name} holds a JSON {type(raw).__name__}; expected an object")
    hosts = raw.get("hosts") or ["algo-1"]
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise ContractFileError(f"{name}: hosts is {hosts!r:.80}; expected a list of host names")
    if len(set(hosts)) < len(hosts):
        raise ContractFileError(f"{name}: hosts lists a host twice: {hosts!r:.200}")
    current = raw.get("current_host", hosts[0])
    if current not in hosts:
        raise ContractFileError(
            f"{name}: current_host {current!r:.80} is not in hosts {hosts!r:.200}"
        )
    interface = raw.get("network_interface_name", "eth0")
    if not isinstance(interface, str):
        raise ContractFileError(f"{name}: network_interface_name is {interface!r:.80}")
    return ResourceConfig(current_host=current, hosts=list(hosts), network_interface_name=interface)
