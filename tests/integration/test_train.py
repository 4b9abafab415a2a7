"""`model/train` end to end, run as SageMaker runs it: a subprocess on an /opt/ml tree.

Every training here uses the tiny random backbone (seconds) except the one `slow` test,
which fine-tunes the real MiniLM for an epoch. A training subprocess costs seconds of
imports alone, so the full run is the session's `trained_model` and each other run
covers several features at once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from plugins.text_classifier.sample import generate
from tests import helpers

HEAVY_MODULES = ("torch", "lightning", "pytorch_lightning", "lightning_fabric", "transformers")
EPOCH_LINE = re.compile(r" train: (epoch=\d+ train_loss=.*)$")


# --- reading what a run left behind ----------------------------------------------------
def kv_line(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split())


def epoch_lines(stdout: str) -> list[dict[str, str]]:
    """The per-epoch summary lines, as dicts of their name=value pairs."""
    return [kv_line(m.group(1)) for line in stdout.splitlines() if (m := EPOCH_LINE.search(line))]


def log_event(stdout: str, event: str) -> dict[str, str] | None:
    """The name=value pairs of the first `train: <event> ...` line, or None."""
    for line in stdout.splitlines():
        if f" train: {event} " in line:
            return kv_line(line.split(f" train: {event} ", 1)[1])
    return None


def imported_modules(stderr: str) -> set[str]:
    """Top-level modules a run imported, from PYTHONPROFILEIMPORTTIME's report."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def metrics_of(base: Path) -> dict:
    return json.loads((base / "output" / "data" / "metrics.json").read_text())


def assert_model_dir(model: Path) -> None:
    for name in ("model.ckpt", "labels.json", "preprocessing.json", "classifier.json"):
        assert (model / name).is_file(), f"model/{name} missing"
    assert (model / "backbone" / "config.json").is_file()
    assert (model / "tokenizer" / "tokenizer.json").is_file()
    assert not list((model / "backbone").glob("*.safetensors")), "weights belong in model.ckpt"


def assert_clean_log(stdout: str, stderr: str) -> None:
    for stream in (stdout, stderr):
        assert "\r" not in stream, "carriage return (a progress bar) in the job log"
        assert "it/s]" not in stream and "%|" not in stream, "a progress bar in the job log"


@pytest.fixture(scope="module")
def full_run(trained_model) -> dict:
    """The session's trained model with the log its job printed."""
    return {
        "base": trained_model,
        "stdout": (trained_model.parent / "train.stdout").read_text(),
        "stderr": (trained_model.parent / "train.stderr").read_text(),
    }


# --- a full run ------------------------------------------------------------------------
def test_full_run_writes_the_model_directory(full_run):
    base = full_run["base"]
    assert not (base / "output" / "failure").exists()
    model = base / "model"
    assert_model_dir(model)
    assert json.loads((model / "labels.json").read_text()) == [
        "account",
        "billing",
        "shipping",
        "technical",
    ]
    assert json.loads((model / "preprocessing.json").read_text())["max_length"] == 32
    head = json.loads((model / "classifier.json").read_text())
    assert (head["pooling"], head["num_classes"]) == ("mean", 4)


def test_model_checkpoint_is_weights_only_without_optimizer_state(full_run):
    import torch

    ckpt = torch.load(full_run["base"] / "model" / "model.ckpt", weights_only=True)
    assert {"state_dict", "hyper_parameters"} <= set(ckpt)
    assert not {"optimizer_states", "lr_schedulers", "loops", "callbacks"} & set(ckpt)
    assert any(k.startswith("network.head.") for k in ckpt["state_dict"])
    assert ckpt["hyper_parameters"]["num_classes"] == 4


_SERVE_SIDE = """
import json, sys
from pathlib import Path
import torch
from plugins.text_classifier.artifacts import load_network, read_spec
from plugins.text_classifier.text import TextEncoder, load_tokenizer

model_dir, texts = Path(sys.argv[1]), json.loads(sys.argv[2])
spec = read_spec(model_dir)
net = load_network(model_dir, spec)
batch = TextEncoder(load_tokenizer(model_dir / "tokenizer"), spec.text)(texts)
with torch.inference_mode():
    logits = net(batch["input_ids"], batch["attention_mask"])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "pytorch_lightning",
    "lightning_fabric", "torchmetrics", "transformers"})
print(json.dumps({"logits": logits.tolist(), "training_modules": heavy}))
"""


def test_serving_rebuild_predicts_as_the_best_lightning_checkpoint(full_run, tiny_backbone):
    """load_network (serving's path, no Lightning) equals the LightningModule restored from
    checkpoints/best.ckpt onto a network built from the original backbone folder."""
    import torch

    from plugins.text_classifier import network
    from plugins.text_classifier.lightning_module import ClassifierModule
    from plugins.text_classifier.text import TextEncoder, tokenizer_for_backbone

    base = full_run["base"]
    texts = [row["text"] for row in generate(12, seed=7)] + ["", "ünïcödé and emoji 🙂"]
    served = subprocess.run(
        [sys.executable, "-c", _SERVE_SIDE, str(base / "model"), json.dumps(texts)],
        env=helpers.subprocess_env(base, {"PYTHONPATH": str(helpers.MODEL_DIR)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 0, served.stderr
    out = json.loads(served.stdout.strip().splitlines()[-1])
    assert out["training_modules"] == [], "serving's rebuild imported training libraries"

    net = network.from_pretrained(str(tiny_backbone), 4, "mean", 0.1)
    module = ClassifierModule.load_from_checkpoint(
        base / "checkpoints" / "best.ckpt", network=net, map_location="cpu", weights_only=False
    ).eval()
    batch = TextEncoder(*tokenizer_for_backbone(str(tiny_backbone), max_length=32))(texts)
    with torch.inference_mode():
        expected = module(batch["input_ids"], batch["attention_mask"])
    got = torch.tensor(out["logits"])
    assert got.shape == expected.shape == (len(texts), 4)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert got.argmax(-1).tolist() == expected.argmax(-1).tolist()


def test_metrics_json_and_confusion_matrix(full_run):
    base = full_run["base"]
    metrics = metrics_of(base)
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "best_epoch"):
        assert key in metrics
    assert set(metrics["per_class"]) == {"account", "billing", "shipping", "technical"}
    cm = metrics["confusion_matrix"]
    assert len(cm) == 4 and all(len(row) == 4 for row in cm)
    assert sum(map(sum, cm)) == metrics["num_examples"] == 32  # the validation channel
    assert sum(cm[i][i] for i in range(4)) / 32 == pytest.approx(metrics["accuracy"], abs=1e-4)
    assert metrics["train_samples_per_sec"] > 0
    assert metrics["train_rows"] == 96 and metrics["epochs_run"] == 2
    # The throughput clock runs inside the fit, never longer than it.
    clocked = metrics["train_rows"] * metrics["epochs_run"] / metrics["train_samples_per_sec"]
    assert clocked <= metrics["train_seconds"] * 1.01
    assert 1 <= metrics["best_epoch"] <= 2
    png = (base / "output" / "data" / "confusion_matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_tensorboard_events_are_written(full_run):
    events = list((full_run["base"] / "output" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_log_has_one_line_per_epoch_and_no_progress_bars(full_run):
    stdout, stderr = full_run["stdout"], full_run["stderr"]
    assert_clean_log(stdout, stderr)
    lines = epoch_lines(stdout)
    assert [int(line["epoch"]) for line in lines] == [1, 2]
    for line in lines:
        assert {"train_loss", "val_loss", "val_accuracy", "val_f1"} <= set(line)
        for name in ("train_loss", "val_loss", "val_accuracy", "val_f1"):
            float(line[name])  # a number, in the format the metric definitions match
    # The model written is the best epoch's, and the final evaluation of it agrees with
    # what validation logged for that epoch.
    metrics = metrics_of(full_run["base"])
    best = lines[metrics["best_epoch"] - 1]
    assert float(best["val_f1"]) == max(float(line["val_f1"]) for line in lines)
    assert float(best["val_accuracy"]) == pytest.approx(metrics["accuracy"], abs=1e-3)
    assert float(best["val_f1"]) == pytest.approx(metrics["macro_f1"], abs=1e-3)


# --- channels --------------------------------------------------------------------------
def _integer_label_rows(n: int, seed: int) -> pd.DataFrame:
    df = pd.DataFrame(generate(n, seed=seed))
    names = sorted(df["label"].unique())
    df["label"] = df["label"].map({name: i for i, name in enumerate(names)})
    return df


def _variant_job(base: Path, channel: str, formats: tuple[str, str], hp: dict) -> pd.DataFrame:
    """A job whose only data channel is `channel`, the same rows split over two files."""
    helpers.write_sample_job(base, hp, n_train=0, n_val=0)
    shutil.rmtree(base / "input" / "data", ignore_errors=True)
    folder = base / "input" / "data" / channel
    folder.mkdir(parents=True)
    df = _integer_label_rows(160, seed=3)
    for part, fmt in zip((df.iloc[:100], df.iloc[100:]), formats, strict=True):
        path = folder / f"part-{len(list(folder.iterdir()))}.{fmt}"
        if fmt == "jsonl":
            part.to_json(path, orient="records", lines=True)
        elif fmt == "parquet":
            part.to_parquet(path)
        elif fmt == "tsv":
            part.to_csv(path, sep="\t", index=False)
        else:
            part.to_csv(path, index=False)
    (folder / "_SUCCESS").write_text("")  # what Spark leaves beside its output
    return df


@pytest.fixture(scope="module")
def channel_variants(tmp_path_factory, tiny_backbone) -> dict:
    """Two jobs on the same integer-labelled rows and no validation channel:
    A: channel `training`, JSON Lines + Parquet, the backbone from a `pretrained` channel
       while the `backbone` hyperparameter names a folder that does not exist;
    B: channel `train`, TSV + CSV, the backbone from the hyperparameter."""
    runs = {}
    common = {"epochs": "1", "max_length": "32"}
    base_a = tmp_path_factory.mktemp("variant_a") / "opt_ml"
    df = _variant_job(
        base_a, "training", ("jsonl", "parquet"), {**common, "backbone": "/nonexistent/backbone"}
    )
    shutil.copytree(tiny_backbone, base_a / "input" / "data" / "pretrained" / "minilm-tiny")
    base_b = tmp_path_factory.mktemp("variant_b") / "opt_ml"
    _variant_job(base_b, "train", ("tsv", "csv"), {**common, "backbone": str(tiny_backbone)})
    for name, base in (("a", base_a), ("b", base_b)):
        result = helpers.run_entry("train", base)
        assert result.returncode == 0, result.stdout + result.stderr
        runs[name] = {"base": base, "stdout": result.stdout, "stderr": result.stderr}
    runs["rows"] = df
    return runs


def test_training_channel_jsonl_parquet_integer_labels(channel_variants):
    run = channel_variants["a"]
    assert_model_dir(run["base"] / "model")
    assert json.loads((run["base"] / "model" / "labels.json").read_text()) == [0, 1, 2, 3]
    assert set(metrics_of(run["base"])["per_class"]) == {"0", "1", "2", "3"}
    data = log_event(run["stdout"], "data")
    assert data["train_channel_rows"] == "160" and data["validation_channel_rows"] == "0"
    assert data["train_texts"] == "128" and data["val_texts"] == "32"  # 160 rows in 2 files
    assert data["validation"].startswith("split_")
    # metrics.json counts the rows trained on, not those held out for validation.
    metrics = metrics_of(run["base"])
    assert (metrics["train_rows"], metrics["train_channel_rows"]) == (128, 160)


def test_pretrained_channel_wins_over_backbone_hyperparameter(channel_variants):
    # The backbone hyperparameter names a folder that does not exist: the run only
    # succeeded because the pretrained channel was used, and the log says so.
    assert log_event(channel_variants["a"]["stdout"], "data")["backbone"] == "minilm-tiny"


def test_fine_tunes_from_the_model_tar_gz_of_an_earlier_job(trained_model, base_dir, run_train):
    """The session's model/, tarred as SageMaker leaves it in S3, as the pretrained channel.
    Learning rates of 0 keep the starting weights: the new model must be the earlier one,
    head included (same labels), which only holds if they came from the tarball."""
    import torch

    helpers.write_sample_job(
        base_dir,
        {
            "backbone": "/nonexistent/backbone",  # only the channel can make this run work
            "epochs": "1",
            "learning_rate": "0",
            "head_learning_rate": "0",
        },
    )
    channel = base_dir / "input" / "data" / "pretrained"
    helpers.tar_like_sagemaker(trained_model / "model", channel / "model.tar.gz")
    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_model_dir(base_dir / "model")

    found = log_event(result.stdout, "pretrained")
    assert (found["source"], found["kind"]) == ("pretrained/model.tar.gz", "model_directory")
    extracted = Path(found["path"])
    assert not extracted.is_relative_to(base_dir) and not extracted.exists()  # removed at exit
    assert [p.name for p in channel.iterdir()] == ["model.tar.gz"]
    weights = log_event(result.stdout, "pretrained_weights")
    assert weights == {"head": "reused", "labels": "4", "max_length": "32"}

    def state(base: Path) -> dict:
        return torch.load(base / "model" / "model.ckpt", weights_only=True)["state_dict"]

    before, after = state(trained_model), state(base_dir)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for name in ("labels.json", "preprocessing.json", "classifier.json"):
        assert (base_dir / "model" / name).read_text() == (
            trained_model / "model" / name
        ).read_text()


def test_without_validation_channel_the_split_is_stratified_and_seeded(channel_variants):
    a, b = channel_variants["a"], channel_variants["b"]
    assert json.loads((b["base"] / "model" / "labels.json").read_text()) == [0, 1, 2, 3]
    counts = channel_variants["rows"]["label"].value_counts()
    support = {k: v["support"] for k, v in metrics_of(a["base"])["per_class"].items()}
    assert support == {str(k): round(n * 0.2) for k, n in counts.items()}
    # Same rows (other channel name, other formats) and same seed: the same split, the
    # same initialisation and the same batches, so the same numbers to the last digit.
    drop = ("train_samples_per_sec",)
    lines_a = [{k: v for k, v in d.items() if k not in drop} for d in epoch_lines(a["stdout"])]
    lines_b = [{k: v for k, v in d.items() if k not in drop} for d in epoch_lines(b["stdout"])]
    assert len(lines_a) == 1 and lines_a == lines_b
    assert metrics_of(a["base"])["confusion_matrix"] == metrics_of(b["base"])["confusion_matrix"]


def test_no_validation_at_all_still_gives_a_model(base_dir, run_train, tiny_backbone):
    helpers.write_sample_job(
        base_dir,
        {
            "backbone": str(tiny_backbone),
            "epochs": "2",
            "max_length": "32",
            "validation_fraction": "0",
        },
        n_train=64,
        n_val=0,
    )
    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (base_dir / "output" / "failure").exists()
    assert_model_dir(base_dir / "model")
    data = log_event(result.stdout, "data")
    assert (data["val_texts"], data["validation"]) == ("0", "none")
    metrics = metrics_of(base_dir)
    assert not {"accuracy", "macro_f1", "per_class", "confusion_matrix"} & set(metrics)
    assert metrics["best_epoch"] == 2 and metrics["train_rows"] == 64
    assert metrics["train_samples_per_sec"] > 0
    assert not (base_dir / "output" / "data" / "confusion_matrix.png").exists()
    lines = epoch_lines(result.stdout)
    assert [int(line["epoch"]) for line in lines] == [1, 2]
    assert not any(k.startswith("val_") for line in lines for k in line)
    assert_clean_log(result.stdout, result.stderr)


# --- bad input -------------------------------------------------------------------------
def _train_dir(base: Path) -> Path:
    return base / "input" / "data" / "train"


def _write_train_csv(base: Path, df: pd.DataFrame) -> None:
    shutil.rmtree(_train_dir(base))
    _train_dir(base).mkdir()
    df.to_csv(_train_dir(base) / "train.csv", index=False)


def _sample(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame(generate(n, seed=1))


def _missing_train(base):
    shutil.rmtree(_train_dir(base))


def _empty_train(base):
    shutil.rmtree(_train_dir(base))
    _train_dir(base).mkdir()


def _no_text_column(base):
    _write_train_csv(base, _sample().rename(columns={"text": "body"}))


def _no_label_column(base):
    helpers.write_hyperparameters(base, {"label_column": "team"})


def _single_class(base):
    _write_train_csv(base, _sample().assign(label="billing"))


def _empty_texts(base):
    df = _sample()
    df.loc[5, "text"] = "   "
    _write_train_csv(base, df)


def _unreadable_file(base):
    (_train_dir(base) / "more.parquet").write_bytes(b"PAR1 this is not parquet at all")


def _non_numeric_epochs(base):
    helpers.write_hyperparameters(base, {"epochs": "three"})


def _unknown_hyperparameter(base):
    helpers.write_hyperparameters(base, {"epoch": "3"})


def _pretrained_not_a_model(base):
    folder = base / "input" / "data" / "pretrained"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model")


def _backbone_path_missing(base):
    helpers.write_hyperparameters(base, {"backbone": "/models/minilm-typo"})


def _encoder_decoder_backbone(base):
    folder = base / "t5-small"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "t5", "is_encoder_decoder": true}')
    helpers.write_hyperparameters(base, {"backbone": str(folder)})


def _malformed_hyperparameters(base):
    (base / "input" / "config" / "hyperparameters.json").write_text('{"epochs": 3,')


BAD_INPUT = {
    "missing train channel": (
        _missing_train,
        r"no training data: expected a channel named 'train' or 'training'",
    ),
    "empty train channel": (_empty_train, r"channel 'train' has no data files \(it is empty\)"),
    "missing text column": (_no_text_column, r"train/train\.csv has no column 'text'"),
    "missing label column": (_no_label_column, r"train/train\.csv has no column 'team'"),
    "single class": (_single_class, r"the training data has a single class \('billing'\)"),
    "empty texts": (
        _empty_texts,
        r"channel 'train' has 1 empty texts? \(first in train/train\.csv\)",
    ),
    "unreadable file": (_unreadable_file, r"cannot read train/more\.parquet: \S"),
    "non-numeric epochs": (
        _non_numeric_epochs,
        r"epochs='three' is not valid: expected an integer",
    ),
    "unknown hyperparameter": (
        _unknown_hyperparameter,
        r"unknown hyperparameter 'epoch' for model=text_classifier; known: ",
    ),
    "pretrained channel not a model": (
        _pretrained_not_a_model,
        r"channel 'pretrained' is not a model: expected a Hugging Face model folder \(config\.json\)"
        r" or a model directory .*; found notes\.txt$",
    ),
    "backbone path missing": (
        _backbone_path_missing,
        r"backbone='/models/minilm-typo' does not exist",
    ),
    "encoder-decoder backbone": (
        _encoder_decoder_backbone,
        r"backbone='.*/t5-small' is an encoder-decoder model \(t5\); the text classifier "
        r"fine-tunes encoders",
    ),
    "malformed hyperparameters.json": (
        _malformed_hyperparameters,
        r"hyperparameters\.json is not valid JSON: \S",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_fails_fast_with_a_reason(case, base_dir, run_train, tiny_backbone):
    make_bad, reason = BAD_INPUT[case]
    helpers.write_sample_job(base_dir, {"backbone": str(tiny_backbone)}, n_train=24, n_val=8)
    make_bad(base_dir)
    result = run_train(base_dir, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode != 0
    first = helpers.failure_reason(base_dir)
    assert re.match(reason, first), f"failure reason {first!r} does not match {reason!r}"
    assert f"training failed: {first}" in result.stdout  # and the log says the same
    # Checked before anything heavy: no torch, Lightning or transformers import, no fit,
    # nothing in model/.
    assert not set(HEAVY_MODULES) & imported_modules(result.stderr)
    assert "pandas" in imported_modules(result.stderr)  # the import report did work
    assert log_event(result.stdout, "fit") is None
    model = base_dir / "model"
    assert not model.exists() or not any(model.iterdir())


# --- the real backbone -----------------------------------------------------------------
@pytest.mark.slow
def test_minilm_learns_the_sample_data_in_one_epoch(base_dir, run_train):
    helpers.write_sample_job(base_dir, {"epochs": "1", "max_length": "64"}, n_train=160, n_val=48)
    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert log_event(result.stdout, "data")["backbone"] == "model"  # the packaged MiniLM
    (line,) = epoch_lines(result.stdout)
    metrics = metrics_of(base_dir)
    assert float(line["val_f1"]) > 0.8 and metrics["macro_f1"] > 0.8  # chance is ~0.25
    assert float(line["val_f1"]) == pytest.approx(metrics["macro_f1"], abs=1e-3)
    assert_model_dir(base_dir / "model")


class _Canary:
    """A pickle that, if ever unpickled with weights_only=False, writes a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).write_text, ("ran",))


def test_a_planted_pickle_in_checkpoints_never_runs(tiny_backbone, tmp_path):
    """checkpoints/ comes from checkpoint_s3_uri. A restart of a finished run exports the
    best epoch from checkpoints/best.ckpt: a pickle planted there must fail the job with a
    reason, loaded weights-only, and never run (it did, with weights_only=False)."""
    import torch

    base = tmp_path / "opt_ml"
    hp = {"backbone": str(tiny_backbone), "epochs": "1", "max_length": "16"}
    helpers.write_sample_job(base, hp, n_train=32, n_val=8)
    assert helpers.run_entry("train", base).returncode == 0
    shutil.rmtree(base / "model")
    shutil.rmtree(base / "output")
    canary = tmp_path / "canary"
    torch.save({"state_dict": _Canary(str(canary))}, base / "checkpoints" / "best.ckpt")
    result = helpers.run_entry("train", base)
    assert result.returncode == 1, result.stdout[-3000:]
    assert not canary.exists(), "the planted pickle ran"
    reason = helpers.failure_reason(base)
    assert "checkpoints/best.ckpt cannot be loaded weights-only" in reason, reason
    assert not (base / "model" / "model.ckpt").exists()


def test_a_backbone_with_custom_code_fails_with_a_reason_and_never_runs_it(tiny_backbone, tmp_path):
    """A config.json whose auto_map names code of its own: transformers would ask on stdin
    whether to run it, and ran it on `y`. Now it is refused, whatever stdin says."""
    backbone = tmp_path / "custom"
    shutil.copytree(tiny_backbone, backbone)
    canary = tmp_path / "canary"
    config = json.loads((backbone / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (backbone / "config.json").write_text(json.dumps(config))
    (backbone / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(canary)!r}).write_text('ran')\n"
        "from transformers import BertConfig, BertModel\n"
        "class EvilConfig(BertConfig):\n    model_type = 'bert'\n"
        "class EvilModel(BertModel):\n    config_class = EvilConfig\n"
    )
    base = tmp_path / "opt_ml"
    helpers.write_sample_job(base, {"backbone": str(backbone), "max_length": "16"}, 32, 8)
    result = subprocess.run(
        [sys.executable, str(helpers.MODEL_DIR / "train")],
        env=helpers.subprocess_env(base),
        cwd=str(helpers.MODEL_DIR),
        input="y\ny\ny\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert not canary.exists(), "the backbone's own code ran"
    reason = helpers.failure_reason(base)
    assert reason == (
        f"backbone={str(backbone)!r} brings its own model code (auto_map in config.json), "
        "which this image does not run: use a backbone of an architecture transformers ships"
    )


def test_a_resource_config_of_the_wrong_shape_fails_with_a_reason(base_dir, run_train):
    """A JSON list was an AttributeError, in the job and in the check that decides which
    host writes the failure file: the job failed with no reason at all."""
    helpers.write_sample_job(base_dir, {}, n_train=24, n_val=8)
    (base_dir / "input" / "config" / "resourceconfig.json").write_text('["algo-1"]')
    result = run_train(base_dir)
    assert result.returncode != 0
    reason = helpers.failure_reason(base_dir)
    assert reason == "resourceconfig.json holds a JSON list; expected an object", reason
