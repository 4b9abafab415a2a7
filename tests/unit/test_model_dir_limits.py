"""What a model directory may make a server read or hold before it is weighed: model.ckpt's
members must be stored, as torch.save writes them (torch.load also reads DEFLATE-compressed
ones: a 64 MB tensor of zeros in 70 KB), and count at their size once read; a JSON file of
the model directory is refused unread past MAX_JSON_BYTES, and when it is not a regular
file. On a multi-model endpoint POST /models weighs the directory against the budget (a
507) before it checks any file. The security review's attacks (a deflated model.ckpt that
took 2.7 GB past a 300 MB budget, a GB of plugin.json read before the budget), scaled down."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from sagemaker_platform import artifacts, multimodel, registry
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.config import serve_config_from_env
from sagemaker_platform.errors import UserError
from sagemaker_platform.multimodel import Store
from sagemaker_platform.multimodel_service import MultiModelService
from tests import helpers

CORRUPT = "model directory is corrupt: "
MB = 2**20


def refusal(call, *args) -> str:
    with pytest.raises(UserError) as err:
        call(*args)
    message = str(err.value)
    assert "\n" not in message
    return message


def torch_zip(tensor_mb: int = 0) -> bytes:
    """A checkpoint as torch.save writes it, with a tensor of zeros of `tensor_mb` MB."""
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(tensor_mb * MB // 4 or 3)}, "epoch": 1}, buf)
    return buf.getvalue()


def deflated(data: bytes) -> bytes:
    """`data`'s zip with every member DEFLATE-compressed: what the attack plants."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def disk_estimate(model_dir: Path) -> float:
    """The estimate of `model_dir` from its size on disk alone."""
    disk = multimodel.directory_bytes(model_dir)
    return round(multimodel.OVERHEAD_MB + multimodel.DISK_FACTOR * disk / MB, 1)


def moved_directory(data: bytes) -> bytes:
    """`data` (torch's zip) with its end records agreeing on a directory a byte early:
    Python's zipfile reads the one right before them, torch's reader the one they name."""
    offset = struct.unpack("<Q", data[-50:-42])[0] - 1
    return (
        data[:-50]
        + struct.pack("<Q", offset)
        + data[-42:-6]
        + struct.pack("<L", offset)
        + data[-2:]
    )


# --- model.ckpt ---------------------------------------------------------------------------
def test_a_checkpoint_torch_save_writes_passes_and_counts_its_size(tmp_path):
    artifacts.write_weights(tmp_path, {"state_dict": {"w": torch.ones(1000)}, "epoch": 3})
    artifacts.check_weights(tmp_path)
    ckpt = tmp_path / artifacts.CHECKPOINT
    members = artifacts.checkpoint_members(tmp_path)
    assert {m.compress_type for m in members} == {zipfile.ZIP_STORED}
    assert 4000 < artifacts.checkpoint_bytes(tmp_path) <= ckpt.stat().st_size
    # a stored checkpoint is estimated at its size on disk, as before
    assert multimodel.estimate_mb(tmp_path) == disk_estimate(tmp_path)


def test_a_lightning_checkpoint_passes(tmp_path):
    """Trainer.save_checkpoint writes what the tests' trained models have."""
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 2)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(Tiny())
    trainer.save_checkpoint(tmp_path / artifacts.CHECKPOINT)
    artifacts.check_weights(tmp_path)
    assert artifacts.load_checkpoint(tmp_path)["state_dict"]["layer.weight"].shape == (2, 8)


def test_a_deflated_checkpoint_is_refused_and_weighed_at_its_size_once_read(tmp_path):
    (tmp_path / artifacts.CHECKPOINT).write_bytes(deflated(torch_zip(64)))
    assert (tmp_path / artifacts.CHECKPOINT).stat().st_size < MB
    # the attack is real: torch.load reads it, 64 MB in memory
    assert artifacts.load_checkpoint(tmp_path)["state_dict"]["w"].nbytes == 64 * MB
    assert refusal(artifacts.check_weights, tmp_path) == (
        CORRUPT + "model.ckpt member 'archive/data.pkl' is compressed; torch.save writes "
        "them stored"
    )
    assert artifacts.checkpoint_bytes(tmp_path) > 64 * MB
    assert multimodel.estimate_mb(tmp_path) > multimodel.DISK_FACTOR * 64


def test_one_compressed_member_among_stored_ones_is_named(tmp_path):
    data = torch_zip()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as zin,
        zipfile.ZipFile(tmp_path / artifacts.CHECKPOINT, "w") as zout,
    ):
        for info in zin.infolist():
            method = zipfile.ZIP_BZIP2 if info.filename.endswith("/0") else zipfile.ZIP_STORED
            zout.writestr(info.filename, zin.read(info), compress_type=method)
    assert refusal(artifacts.check_weights, tmp_path) == (
        CORRUPT + "model.ckpt member 'archive/data/0' is compressed; torch.save writes them stored"
    )


@pytest.mark.parametrize(
    "tamper, why",
    [
        (lambda d: b"\0" * 100 + d, " (its zip64 records disagree)"),  # zipfile allows it
        (moved_directory, " (its zip directory is misplaced)"),
        (lambda d: d[:-2] + b"\x02\x00hi", ""),  # a comment
        (lambda d: d[:-22] + b"PK\x05\x06" + b"\0" * 18, " (its zip64 records disagree)"),
        (lambda d: d[:-34] + struct.pack("<Q", 0) + d[-26:], " (its zip64 records disagree)"),
        (lambda d: d[:10], ""),
        (lambda d: b"", ""),
    ],
    ids=[
        "prepended",
        "moved",
        "comment",
        "end-record-disagrees",
        "locator-elsewhere",
        "cut",
        "empty",
    ],
)
def test_a_zip_laid_out_unlike_torch_saves_is_refused(tmp_path, tamper, why):
    """A directory torch's reader and Python's zipfile might find in different places: the
    check must see what torch.load reads."""
    (tmp_path / artifacts.CHECKPOINT).write_bytes(tamper(torch_zip()))
    message = CORRUPT + "model.ckpt is not a torch checkpoint" + why
    assert refusal(artifacts.check_weights, tmp_path) == message
    assert refusal(artifacts.checkpoint_bytes, tmp_path) == message


def test_a_zip_directory_too_big_to_parse_is_refused_unparsed(tmp_path, monkeypatch):
    (tmp_path / artifacts.CHECKPOINT).write_bytes(torch_zip())
    monkeypatch.setattr(artifacts, "MAX_CHECKPOINT_DIRECTORY_BYTES", 256)

    def parsed(*args, **kwargs):
        raise AssertionError("the directory was parsed")

    monkeypatch.setattr(artifacts.zipfile, "ZipFile", parsed)
    message = refusal(artifacts.check_weights, tmp_path)
    assert message.startswith(CORRUPT + "model.ckpt has a zip directory of ")
    # the estimate falls back to the size on disk; the check refuses it after
    assert multimodel.estimate_mb(tmp_path) == disk_estimate(tmp_path)


# --- the model directory's JSON ------------------------------------------------------------
def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("size", ["a byte over", "a GB"])
def test_a_json_file_over_the_cap_is_refused_before_it_is_read(tmp_path, monkeypatch, size):
    path = sparse(tmp_path / "plugin.json", 8 * MB + 1 if size == "a byte over" else 2**30)
    opened = []
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k)
    )
    started = time.monotonic()
    assert refusal(artifacts.read_json, path) == (
        CORRUPT + "plugin.json is over 8 MB, the most a model directory's JSON file may be"
    )
    assert opened == [] and time.monotonic() - started < 1
    assert refusal(artifacts.read_manifest, tmp_path).startswith(CORRUPT + "plugin.json is over")


def test_a_json_file_at_the_cap_is_read(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('["a",' + " " * (artifacts.MAX_JSON_BYTES - 9) + '"b"]')
    assert path.stat().st_size == artifacts.MAX_JSON_BYTES
    assert artifacts.read_json(path, expect=list) == ["a", "b"]


def test_a_file_longer_than_its_size_says_is_cut_at_the_cap(tmp_path, monkeypatch):
    # /proc's files say 0 bytes: the read itself stops past the cap
    monkeypatch.setattr(artifacts, "MAX_JSON_BYTES", 16)
    (tmp_path / "schema.json").symlink_to("/proc/self/status")
    assert os.stat(tmp_path / "schema.json").st_size == 0
    assert refusal(artifacts.read_json, tmp_path / "schema.json").startswith(
        CORRUPT + "schema.json is over "
    )


def test_a_fifo_or_a_folder_is_not_a_json_file(tmp_path):
    os.mkfifo(tmp_path / "network.json")
    done = threading.Event()
    result = []
    threading.Thread(
        target=lambda: (
            result.append(refusal(artifacts.read_json, tmp_path / "network.json")),
            done.set(),
        ),
        daemon=True,
    ).start()
    assert done.wait(5), "reading a fifo blocked"
    assert result == [CORRUPT + "network.json is not a regular file"]
    (tmp_path / "labels.json").mkdir()
    assert refusal(artifacts.read_json, tmp_path / "labels.json") == (
        CORRUPT + "labels.json is not a regular file"
    )
    (tmp_path / "schema.json").symlink_to(tmp_path / "gone")
    assert refusal(artifacts.read_json, tmp_path / "schema.json") == (
        f"model directory is incomplete: schema.json is missing from {tmp_path}"
    )


def test_the_tokenizer_json_is_not_held_to_the_cap(tmp_path, monkeypatch):
    """tokenizer.json is the tokenizers library's to read (a multilingual one is 17 MB):
    the text plug-in loads it whatever MAX_JSON_BYTES says."""
    from plugins.text_classifier.text import TOKENIZER_FILE, load_tokenizer

    monkeypatch.setattr(artifacts, "MAX_JSON_BYTES", 1024)
    source = helpers.minilm_dir() / TOKENIZER_FILE
    assert source.stat().st_size > 1024
    (tmp_path / TOKENIZER_FILE).write_bytes(source.read_bytes())
    assert load_tokenizer(tmp_path).encode("hello world").ids


def test_a_broken_tokenizer_json_over_the_cap_gets_the_librarys_reason(tmp_path, monkeypatch):
    from plugins.text_classifier.text import TOKENIZER_FILE, load_tokenizer

    monkeypatch.setattr(artifacts, "MAX_JSON_BYTES", 1024)
    (tmp_path / TOKENIZER_FILE).write_text('{"model": ' + " " * 2048 + "}")
    with pytest.raises(UserError) as err:
        load_tokenizer(tmp_path)
    assert f"{TOKENIZER_FILE} cannot be loaded: " in str(err.value)
    assert "the most a model directory's JSON file may be" not in str(err.value)


# --- POST /models: weighed before it is checked ---------------------------------------------
@pytest.fixture
def service(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    cfg = serve_config_from_env(
        {
            "MODEL_SERVER_MULTI_MODEL": "true",
            "MODEL_SERVER_WORKERS": "1",
            "MODEL_SERVER_MME_MEMORY_MB": "100",
        }
    )
    return MultiModelService(cfg, Store.create(tmp_path / "store"), models_root=root)


def post(service: MultiModelService, name: str) -> tuple[int, str]:
    body = {"model_name": name, "url": str(service.root / name / "model")}
    with pytest.raises(HTTPError) as exc:
        service.load(json.dumps(body).encode())
    return exc.value.status, exc.value.message


def model_dir(service: MultiModelService, name: str) -> Path:
    out = service.root / name / "model"
    artifacts.write_manifest(out, "tabular", "plugins.tabular")
    artifacts.write_weights(out, {"state_dict": {"w": torch.ones(4)}})
    return out


def test_a_deflated_checkpoint_over_the_budget_is_a_507(service):
    out = model_dir(service, "big")
    (out / artifacts.CHECKPOINT).write_bytes(deflated(torch_zip(64)))  # 70 KB on disk
    code, message = post(service, "big")
    assert code == 507 and "MODEL_SERVER_MME_MEMORY_MB" in message, message
    assert service.store.entries()[1] == {}


def test_a_deflated_checkpoint_within_the_budget_is_a_400(service):
    (model_dir(service, "small") / artifacts.CHECKPOINT).write_bytes(deflated(torch_zip(1)))
    code, message = post(service, "small")
    assert code == 400 and "model.ckpt member 'archive/data.pkl' is compressed" in message


def test_a_gb_of_plugin_json_is_a_507_before_the_model_directory_is_checked(service, monkeypatch):
    sparse(model_dir(service, "bigjson") / "plugin.json", 2**30)

    def checked(path):
        raise AssertionError("the model directory was checked before it was weighed")

    monkeypatch.setattr(registry, "check_model_dir", checked)
    code, message = post(service, "bigjson")
    assert code == 507 and "MODEL_SERVER_MME_MEMORY_MB" in message, message


def test_plugin_json_over_the_cap_within_the_budget_is_a_400_unread(service):
    sparse(model_dir(service, "bigjson") / "plugin.json", 64 * MB)
    service.budget_mb = 10**6
    code, message = post(service, "bigjson")
    assert code == 400 and message == (
        "model 'bigjson' cannot be loaded: model directory is corrupt: plugin.json is over "
        "8 MB, the most a model directory's JSON file may be"
    )


def test_a_listed_name_is_a_409_before_its_directory_is_checked(service, monkeypatch):
    model_dir(service, "a")
    service.store.reserve("a", "/m/a", "/m/a", "tabular", 1, 100, 1)
    monkeypatch.setattr(registry, "check_model_dir", lambda path: 1 / 0)
    assert post(service, "a") == (409, "model 'a' is already loading")


def test_check_admission_answers_as_reserve_and_lists_nothing(tmp_path):
    store = Store.create(tmp_path / "store")
    store.check_admission("a", 50, 100, 2)  # exactly the budget: fits
    assert store.entries()[1] == {}
    with pytest.raises(HTTPError) as exc:
        store.check_admission("a", 51, 100, 2)
    assert exc.value.status == 507 and "2 worker(s) x 51 MB" in exc.value.message
