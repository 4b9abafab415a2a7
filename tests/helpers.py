"""Helpers shared by the test suites (and the benchmarks): real parts, small sizes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "model"
sys.path.insert(0, str(MODEL_DIR))

from local_test import make_sample_data  # noqa: E402


def minilm_dir() -> Path:
    from plugins.text_classifier.pretrained import default_backbone

    return default_backbone()


def test_hyperparameters(plugin: str, tiny_backbone: Path | None = None) -> dict[str, str]:
    """A plug-in's hyperparameters for tests: seconds of training on its sample data."""
    if plugin == "text_classifier":
        return {"backbone": str(tiny_backbone), "epochs": "2", "max_length": "32"}
    return {**sample(plugin).HYPERPARAMETERS, "model": plugin, "epochs": "2"}


def sample(plugin: str):
    """The plug-in's sample.py: its data writer and its PAYLOADS."""
    return make_sample_data.sample_module(plugin)


# Content types whose sample request holds three records (a list, lines, rows); a body
# of any other type (image/png, text/plain, audio/wav...) is one record.
RECORD_TYPES = ("application/json", "application/jsonlines", "text/csv")


def records_in(content_type: str) -> int:
    """How many records the plug-in's sample request of `content_type` holds."""
    return 3 if content_type in RECORD_TYPES else 1


# What the platform tests assume of a plug-in that declares no TEST_SIZES in sample.py.
TEST_SIZES = {"sigterm_rows": 96}


def test_sizes(plugin: str) -> dict[str, int]:
    """The job sizes the platform tests use for `plugin`: sample.py's TEST_SIZES over
    the defaults (a fast model needs more rows for an epoch to be interrupted)."""
    return {**TEST_SIZES, **getattr(sample(plugin), "TEST_SIZES", {})}


def channel_rows(plugin: str, channel: Path):
    """The channel as the platform hands it to the plug-in: its tables' rows, or (a
    plug-in of files) one row per file."""
    from sagemaker_platform import channels, registry

    return channels.read(channel, registry.load(plugin).data)


def row_labels(plugin: str, frame) -> list:
    """Each row's class in the sample data: the `label` column, or a file's label folder."""
    from sagemaker_platform import channels

    if channels.RELATIVE in frame and "label" not in frame:
        return frame[channels.RELATIVE].str.split("/").str[0].tolist()
    return frame["label"].tolist()


def make_tiny_backbone(out: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A random BERT of the MiniLM tokenizer's vocabulary, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(minilm_dir())).save_pretrained(str(out))
    return out


def tar_like_sagemaker(model: Path, tarball: Path, top: str = "") -> Path:
    """model.tar.gz as SageMaker packs /opt/ml/model after a training job: the folder's
    files at the top of the archive (or under `top/`, as a person might tar it)."""
    import tarfile

    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(model.iterdir()):
            tar.add(path, arcname=f"{top}/{path.name}" if top else path.name)
    return tarball


def subprocess_env(base: Path, extra: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MODEL_SERVER_"))}
    env.update(
        {
            "SAGEMAKER_BASE_DIR": str(base),
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def open_tmpdir():
    """A folder to give a subprocess as its TMPDIR, removed afterwards: under the system's
    temporary folder and open to other users, as /tmp is (a `serve` it starts puts
    gunicorn's socket there, and nginx's workers may run as another user: pytest's
    tmp_path is closed to them)."""
    folder = Path(tempfile.mkdtemp(prefix="test-tmpdir-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_benchmark(
    script: str, model_dir: Path, tmp_path: Path, *args: str, leaves: frozenset[str] = frozenset()
) -> str:
    """benchmarks/<script>'s stdout, run on `model_dir` as briefly as `args` say; it must
    succeed and leave nothing in its temporary folder (a copy of the model each run,
    else) but the files named in `leaves`."""
    with open_tmpdir() as scratch:
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), f"--model-dir={model_dir}", *args],
            env=subprocess_env(tmp_path, {"TMPDIR": str(scratch)}),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert {p.name for p in scratch.iterdir()} <= leaves
    return done.stdout


def run_code(code: str, timeout: int = 60) -> subprocess.CompletedProcess:
    """Python `code` in an interpreter of its own (one gevent can patch, say), with model/
    as its `sys.argv[1]` to put on sys.path; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", code, str(MODEL_DIR)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_entry(name: str, base: Path, timeout: int = 300, env: dict | None = None):
    """Run model/<name> exactly as the image would: a subprocess with the base dir set."""
    return subprocess.run(
        [sys.executable, str(MODEL_DIR / name)],
        env=subprocess_env(base, env),
        cwd=str(MODEL_DIR),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_sample_job(
    base: Path,
    hyperparameters: dict[str, str],
    n_train: int = 96,
    n_val: int = 32,
    model: str = "text_classifier",
) -> Path:
    return make_sample_data.write_job(
        base, hyperparameters, n_train=n_train, n_val=n_val, model=model
    )


def write_hyperparameters(base: Path, params: dict[str, str]) -> None:
    path = base / "input" / "config" / "hyperparameters.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params))


def failure_reason(base: Path) -> str:
    path = base / "output" / "failure"
    assert path.exists(), "no output/failure written"
    return path.read_text().splitlines()[0]


def child_pids(parent: int) -> list[int]:
    """The live (not zombie) child processes of `parent`, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone while we looked
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_s3(home: Path):
    """A real moto server on a loopback port; yields the AWS_* variables that point a
    client (boto3, and fsspec's s3fs in a job) at it with fake credentials."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        }
    finally:
        server.stop()


class Server:
    """`model/serve` (nginx + gunicorn + Flask) running on a free loopback port."""

    def __init__(self, base: Path, env: dict | None = None, port: int | None = None):
        import tempfile

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in __exit__
        extra = {"SAGEMAKER_BIND_TO_PORT": str(self.port), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, str(MODEL_DIR / "serve")],
            env=subprocess_env(base, extra),
            cwd=str(MODEL_DIR),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until /ping answered 200; raises if the server died or never did."""
        import time

        import requests

        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except (requests.ConnectionError, requests.Timeout):  # not up, or busy loading
                pass
            time.sleep(0.05)
        raise TimeoutError(f"/ping not 200 after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 40) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log.close()


def bf16_pays(log: str) -> list[str]:
    """The decisions ("yes" / "no") of the `cpu bf16 probe` lines in a process's log
    (`cpu_bf16.cpu_bf16_speedup`: one per process that resolved an `auto` precision)."""
    return re.findall(r"cpu bf16 probe speedup=\S+ bf16_pays=(yes|no)", log)


def text_model(
    model_dir: Path,
    precision: str = "fp32",
    device: str = "cpu",
    threads: int = 0,
    max_batch_size: int = 32,
    backbone: str = "auto",
    share=None,
):
    """The text plug-in's loaded model in this process, on a runtime resolved as a
    serving worker resolves it (`share` stands for the cores shared with other workers)."""
    from plugins.text_classifier.inference import Model
    from sagemaker_platform.runtime import Runtime

    runtime = Runtime.resolve(precision, device, threads, max_batch_size, share)
    return Model(model_dir, runtime, backbone)
