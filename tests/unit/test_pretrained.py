"""The pretrained channel: a model folder, or the model.tar.gz an earlier job left in S3."""

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from plugins.text_classifier import artifacts, network, pretrained
from plugins.text_classifier.config import Hyperparameters as TrainConfig
from plugins.text_classifier.text import TextSettings, load_tokenizer
from sagemaker_platform import archives
from sagemaker_platform import artifacts as platform_artifacts
from sagemaker_platform.errors import UserError
from tests import helpers

LABELS = ["billing", "delivery", "technical"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A model directory as a training job writes it, of a tiny random BERT."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    net = network.TextClassifier(BertModel(config), len(LABELS), "mean", 0.1)
    checkpoint = {"state_dict": {f"network.{k}": v for k, v in net.state_dict().items()}}
    spec = artifacts.ModelSpec(labels=LABELS, text=TextSettings(max_length=64), pooling="mean")
    out = tmp_path_factory.mktemp("earlier_job") / "model"
    platform_artifacts.write_weights(out, checkpoint)
    platform_artifacts.write_manifest(out, "text_classifier", "plugins.text_classifier")
    artifacts.write_model_dir(out, spec, config, load_tokenizer(helpers.minilm_dir()))
    return out


@pytest.fixture
def channel(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path / "opt_ml"))
    path = tmp_path / "opt_ml" / "input" / "data" / "pretrained"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def scratch(tmp_path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def resolve(scratch: Path) -> Path:
    """As training calls it: the `channel` fixture's folder when a test made it."""
    channel = scratch.parent / "opt_ml" / "input" / "data" / "pretrained"
    found = channel if channel.is_dir() else None
    return Path(pretrained.resolve(TrainConfig(backbone="/nonexistent"), found, scratch))


# --- finding the model ------------------------------------------------------------------
def test_model_tar_gz_of_an_earlier_job_is_extracted_outside_the_channel(
    channel, scratch, model_dir
):
    helpers.tar_like_sagemaker(model_dir, channel / "model.tar.gz")
    folder = resolve(scratch)
    assert folder.is_relative_to(scratch)
    assert pretrained.is_model_directory(folder)
    assert [p.name for p in channel.iterdir()] == ["model.tar.gz"]  # the input is untouched
    for name in ("model.ckpt", "labels.json", "tokenizer/tokenizer.json", "backbone/config.json"):
        assert (folder / name).read_bytes() == (model_dir / name).read_bytes()


def test_any_single_tar_gz_with_the_model_in_one_folder(channel, scratch, model_dir):
    helpers.tar_like_sagemaker(model_dir, channel / "run-7.tar.gz", top="model")
    folder = resolve(scratch)
    assert folder == scratch / "run-7" / "model"
    assert pretrained.is_model_directory(folder)


def test_a_hugging_face_folder_in_a_tarball(channel, scratch, tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "tokenizer.json").write_text("{}")
    helpers.tar_like_sagemaker(hf, channel / "model.tar.gz")
    folder = resolve(scratch)
    assert (folder / "config.json").is_file() and not pretrained.is_model_directory(folder)


def test_a_model_directory_as_plain_files_in_the_channel(channel, scratch, model_dir):
    import shutil

    shutil.copytree(model_dir, channel, dirs_exist_ok=True)
    assert resolve(scratch) == channel
    assert not any(scratch.iterdir())  # nothing to extract


def test_a_tarball_without_a_model_names_what_was_expected(channel, scratch, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.txt").write_text("not a model")
    helpers.tar_like_sagemaker(notes, channel / "model.tar.gz")
    with pytest.raises(UserError) as caught:
        resolve(scratch)
    assert str(caught.value) == (
        "pretrained/model.tar.gz holds no model: expected a Hugging Face model folder "
        "(config.json) or a model directory written by a training job of this template "
        "(model.ckpt, classifier.json, backbone/, tokenizer/) at the top of the archive or "
        "in its single folder; found README.txt"
    )


def test_an_incomplete_model_directory_names_the_tarball(channel, scratch, model_dir, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    (partial / "labels.json").unlink()
    helpers.tar_like_sagemaker(partial, channel / "model.tar.gz")
    with pytest.raises(UserError, match=r"^pretrained/model\.tar\.gz: model directory is "):
        resolve(scratch)


def test_a_tarball_beside_other_files_is_not_a_model(channel, scratch, model_dir):
    helpers.tar_like_sagemaker(model_dir, channel / "model.tar.gz")
    (channel / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match=r"found model\.tar\.gz, notes\.txt$"):
        resolve(scratch)
    assert not any(scratch.iterdir())


def test_a_broken_tarball_is_named(channel, scratch):
    (channel / "model.tar.gz").write_bytes(b"\x1f\x8b this is not gzip")
    with pytest.raises(UserError, match=r"^cannot read pretrained/model\.tar\.gz as a gzipped tar"):
        resolve(scratch)


# --- members that would leave the extraction folder -------------------------------------
def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    data = b"" if kind != tarfile.REGTYPE else b"gotcha\n"
    info.size = len(data)
    return info, io.BytesIO(data)


# Each case names its members, built afresh per run: a BytesIO made once at import would
# be read empty by a second run of the case in one process (mutmut's runs, pytest-repeat).
MALICIOUS = {
    "parent": ([("../escape.txt",)], r"member '\.\./escape\.txt' contains '\.\.'"),
    "parent inside": (
        [("backbone/../../escape.txt",)],
        r"member 'backbone/\.\./\.\./escape\.txt' contains '\.\.'",
    ),
    "absolute": ([("/tmp/escape.txt",)], r"member '/tmp/escape\.txt' has an absolute path"),
    "symlink out": (
        [("config.json", tarfile.SYMTYPE, "/etc/passwd")],
        r"member 'config\.json' is a symbolic link \(to '/etc/passwd'\); links are not extracted",
    ),
    "relative symlink out": (
        [("up", tarfile.SYMTYPE, "../../.."), ("up/escape.txt",)],
        r"member 'up' is a symbolic link \(to '\.\./\.\./\.\.'\)",
    ),
    "hard link out": (
        [("config.json", tarfile.LNKTYPE, "/etc/passwd")],
        r"member 'config\.json' is a hard link \(to '/etc/passwd'\)",
    ),
    "device": ([("tty", tarfile.CHRTYPE)], r"member 'tty' is a character device, a special"),
}


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_a_member_that_would_leave_the_folder_is_refused(case, channel, scratch):
    members, reason = MALICIOUS[case]
    with tarfile.open(channel / "model.tar.gz", "w:gz") as tar:
        tar.addfile(*member("model/notes.txt"))  # a harmless member first
        for args in members:
            tar.addfile(*member(*args))
    with pytest.raises(UserError, match=r"^pretrained/model\.tar\.gz is refused: " + reason):
        resolve(scratch)
    base = channel.parents[3]  # tmp_path: the channel's tree and the scratch folder
    assert not [p for p in base.rglob("*escape*")], "a member was written"
    assert not (scratch / "model" / "config.json").is_symlink()


def test_extract_tarball_writes_regular_files_only_inside(tmp_path):
    tarball = tmp_path / "a.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.addfile(*member("./x/config.json"))
    archives.extract(tarball, tmp_path / "out", "pretrained/a.tar.gz")
    assert (tmp_path / "out" / "x" / "config.json").read_text() == "gotcha\n"


def test_even_a_link_that_stays_inside_is_refused(tmp_path):
    """No model archive needs a link: one that stays inside is refused too."""
    tarball = tmp_path / "a.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.addfile(*member("./x/config.json"))
        tar.addfile(*member("x/link.json", tarfile.SYMTYPE, "config.json"))
    with pytest.raises(UserError, match=r"member 'x/link\.json' is a symbolic link"):
        archives.extract(tarball, tmp_path / "out", "pretrained/a.tar.gz")
    assert not (tmp_path / "out" / "x" / "link.json").is_symlink()


# --- load: the network to fine-tune ---------------------------------------------------
def saved_weights(model_dir: Path) -> dict:
    return artifacts.network_state_dict(model_dir)


def test_same_labels_continue_from_the_whole_network(model_dir):
    cfg = TrainConfig(max_length=256)
    tokenizer, settings, net = pretrained.load(str(model_dir), LABELS, cfg)
    saved = saved_weights(model_dir)
    assert net.state_dict().keys() == saved.keys()
    assert all(torch.equal(net.state_dict()[k], saved[k]) for k in saved)
    assert net.training
    # The earlier model's text settings; max_length no longer than it was trained with.
    assert settings == artifacts.read_spec(model_dir).text
    assert settings.max_length == 64
    assert tokenizer.encode("my parcel never arrived").ids[0] == 101  # [CLS]


def test_other_labels_keep_the_backbone_and_get_a_fresh_head(model_dir):
    cfg = TrainConfig(max_length=32, pooling="mean")
    _, settings, net = pretrained.load(str(model_dir), ["a", "b"], cfg)
    saved = saved_weights(model_dir)
    backbone = {k: v for k, v in net.state_dict().items() if k.startswith("backbone.")}
    assert backbone.keys() == {k for k in saved if k.startswith("backbone.")}
    assert all(torch.equal(v, saved[k]) for k, v in backbone.items())
    assert net.head.weight.shape == (2, 32)
    # Initialised, not the uninitialised memory of a skipped init.
    assert torch.isfinite(net.head.weight).all() and 0 < net.head.weight.abs().max() < 1
    assert settings.max_length == 32


def test_another_pooling_gets_a_fresh_head(model_dir):
    _, _, net = pretrained.load(str(model_dir), LABELS, TrainConfig(pooling="cls"))
    saved = saved_weights(model_dir)
    assert net.pooling == "cls"
    assert not torch.equal(net.head.weight, saved["head.weight"])


def test_a_checkpoint_that_does_not_fit_its_backbone_is_a_user_error(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    config = json.loads((broken / "backbone" / "config.json").read_text())
    config["hidden_size"], config["intermediate_size"] = 64, 128
    (broken / "backbone" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"^cannot load backbone .*: Error\(s\) in loading"):
        pretrained.load(str(broken), ["a", "b"], TrainConfig())
