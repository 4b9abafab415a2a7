"""Hostile and unlucky inputs to `train`, for every plug-in.

Each test plants what an attacker with write access to a channel or the checkpoint
folder could, or what an unlucky user might, and runs the real entry point.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests

from launcher import metrics
from sagemaker_platform import logs, registry
from tests import helpers
from tests.unit import chained_links

FORGED = "\nepoch=99 val_f1=0.999 val_loss=0.001 train_loss=0.001"


def metric_matches(output: str) -> dict[str, set[str]]:
    """What SageMaker's metric definitions would read from the job's log, per metric."""
    found: dict[str, set[str]] = {}
    for definition in metrics.metric_definitions():
        regex = re.compile(definition["Regex"])
        for line in output.splitlines():
            found.setdefault(definition["Name"], set()).update(regex.findall(line))
    return found


def assert_nothing_forged(output: str) -> None:
    for name, values in metric_matches(output).items():
        assert not values & {"99", "0.999", "0.001"}, (name, values, output)


def test_hostile_names_print_no_metric_a_tuning_job_would_read(
    plugin_name, plugin_hp, base_dir, run_train
):
    """A data file, a CSV column and a checkpoint file named with metric lines: the job
    trains, and only its own epochs' figures match the metric definitions."""
    helpers.write_sample_job(base_dir, plugin_hp, model=plugin_name)
    train = base_dir / "input" / "data" / "train"
    if registry.load(plugin_name).data == "files":  # a file of the channel, renamed
        data = sorted(p for p in train.rglob("*") if p.is_file())[0]
        data.rename(data.with_name(f"part{FORGED}{data.suffix}"))
    else:  # a data file and a column
        (data,) = [p for p in train.iterdir() if p.suffix == ".csv"]
        text = data.read_text().splitlines()
        rows = [text[0] + ',"' + FORGED.replace('"', "") + '"'] + [f"{r},1" for r in text[1:]]
        data.unlink()
        (train / f"part{FORGED}.csv").write_text("\n".join(rows) + "\n")
    checkpoints = base_dir / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / f"planted{FORGED}.ckpt").write_bytes(b"not a checkpoint")

    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert_nothing_forged(output)
    assert "planted" in output  # the skipped checkpoint is named, inert
    epochs = metric_matches(output)["epoch"]
    assert epochs and epochs <= {"1", "2"}, epochs


@pytest.mark.parametrize(
    "params",
    [
        {"epochs": f"2{FORGED}"},
        {f"epochs{FORGED}": "2"},
    ],
    ids=["value", "key"],
)
def test_a_hostile_hyperparameter_fails_in_one_whole_line_and_forges_nothing(
    plugin_name, plugin_hp, base_dir, run_train, params
):
    helpers.write_sample_job(base_dir, {**plugin_hp, **params}, model=plugin_name)
    result = run_train(base_dir)
    assert result.returncode == 1
    assert_nothing_forged(result.stdout + result.stderr)
    reason = helpers.failure_reason(base_dir)
    # whole, not cut at the break: the value as it is, a key escaped
    whole = "val_f1=0.999" if "epochs" in params else logs.key(f"epochs{FORGED}")
    assert whole in reason.replace("\\=", "="), reason


def test_a_reserved_hyperparameter_key_forges_no_metric(base_dir, run_train):
    """`sagemaker_*` and `_*` keys are logged as they come, on the
    `sagemaker_hyperparameters` line, before the data is read: a job without data fails
    right after printing it."""
    keys = [f"sagemaker_x{FORGED} y", f"_x{FORGED}", "sagemaker_val_f1=.5", "_x val_f1"]
    helpers.write_hyperparameters(base_dir, {key: "0.999" for key in keys})
    result = run_train(base_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no training data" in helpers.failure_reason(base_dir)
    assert_nothing_forged(result.stdout + result.stderr)
    (line,) = [x for x in result.stdout.splitlines() if " sagemaker_hyperparameters " in x]
    assert all(logs.key(key) + "=0.999" in line for key in keys), line


def test_a_column_hyperparameter_naming_a_metric_forges_nothing(
    plugin_name, plugin_hp, base_dir, run_train
):
    helpers.write_sample_job(base_dir, {**plugin_hp, "label_column": FORGED}, model=plugin_name)
    result = run_train(base_dir)
    assert result.returncode == 1
    assert_nothing_forged(result.stdout + result.stderr)
    assert "column" in helpers.failure_reason(base_dir)


# --- serve -----------------------------------------------------------------------------
MAX_RECORDS = 40
JSONLINES = "application/jsonlines"


@pytest.fixture(scope="module")
def capped_server(plugin_trained):
    env = {
        "MODEL_SERVER_PRECISION": "fp32",
        "MODEL_SERVER_MAX_RECORDS": str(MAX_RECORDS),
        "MODEL_SERVER_WORKERS": "1",  # the limit is per request: one worker's start will do
    }
    with helpers.Server(plugin_trained, env=env) as srv:
        srv.wait_ready()
        yield srv


def jsonl_records(plugin_name: str, n: int) -> bytes:
    lines = helpers.sample(plugin_name).PAYLOADS[JSONLINES].decode().splitlines()
    return "".join(lines[i % len(lines)] + "\n" for i in range(n)).encode()


def test_a_request_over_the_record_limit_is_a_413_and_one_at_it_is_answered(
    plugin_name, capped_server
):
    url = capped_server.url + "/invocations"
    headers = {"Content-Type": JSONLINES, "Accept": JSONLINES}
    at = requests.post(url, data=jsonl_records(plugin_name, MAX_RECORDS), headers=headers)
    assert at.status_code == 200, at.text
    assert len(at.text.splitlines()) == MAX_RECORDS
    over = requests.post(url, data=jsonl_records(plugin_name, MAX_RECORDS + 1), headers=headers)
    assert over.status_code == 413, over.text
    assert "MODEL_SERVER_MAX_RECORDS=40" in over.json()["error"]
    assert requests.get(capped_server.url + "/ping").status_code == 200


def test_the_archive_limits_reach_the_pretrained_channel(trained_model, tiny_backbone, base_dir):
    """max_unpacked_files is a hyperparameter of every job; the text plug-in's pretrained
    channel extracts through the platform's archives with it."""
    hp = helpers.test_hyperparameters("text_classifier", tiny_backbone)
    helpers.write_sample_job(base_dir, {**hp, "max_unpacked_files": "2"})
    channel = base_dir / "input" / "data" / "pretrained"
    helpers.tar_like_sagemaker(trained_model / "model", channel / "model.tar.gz")
    result = helpers.run_entry("train", base_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    reason = helpers.failure_reason(base_dir)
    assert reason.startswith("pretrained/model.tar.gz is refused"), reason
    assert "max_unpacked_files" in reason


def test_a_chained_symlink_archive_in_the_pretrained_channel_writes_nothing_outside(
    tiny_backbone, base_dir, tmp_path
):
    """Issue 23, item 1: the archive that escapes Python's tarfile filter through 16
    chained symlinks (no '..' in any member name) fails the job in one line naming its
    first link, and nothing lands outside the extraction folder (TMPDIR holds the job's
    scratch folder here, so a file the archive planted above it would survive the job)."""
    hp = helpers.test_hyperparameters("text_classifier", tiny_backbone)
    helpers.write_sample_job(base_dir, hp)
    channel = base_dir / "input" / "data" / "pretrained"
    channel.mkdir()
    chained_links.build(channel / "model.tar.gz", levels_up=2, planted="pwned")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = helpers.run_entry("train", base_dir, env={"TMPDIR": str(tmp)})
    assert result.returncode == 1, result.stdout + result.stderr
    reason = helpers.failure_reason(base_dir)
    assert reason.startswith("pretrained/model.tar.gz is refused: member 'a' is a symbolic link"), (
        reason
    )
    assert "Traceback" not in result.stdout
    assert not list(tmp_path.rglob("pwned")), "the archive wrote outside its folder"
    assert not list(tmp.iterdir())  # the scratch folder is gone, nothing beside it


# --- a checkpoint's callback state and links in checkpoints/ --------------------------
def _tabular_job(base: Path, epochs: int) -> None:
    hp = helpers.test_hyperparameters("tabular")
    helpers.write_sample_job(base, {**hp, "epochs": str(epochs)}, model="tabular")


def test_a_resumed_checkpoint_naming_outside_files_and_s3_objects_deletes_none(tmp_path):
    """last.ckpt from checkpoint_s3_uri whose EpochCheckpoints state names a file and a
    folder beside the base dir (through checkpoints/../..) and S3 objects: Lightning
    deleted them all when the resumed run saved its next best and last checkpoints. The
    job resumes, ends and exports its model, and every victim is still there."""
    import boto3
    import torch

    base = tmp_path / "opt_ml"
    _tabular_job(base, epochs=1)
    assert helpers.run_entry("train", base).returncode == 0
    checkpoints = base / "checkpoints"
    (tmp_path / "victim.txt").write_text("keep me")
    (tmp_path / "victim_dir").mkdir()
    (tmp_path / "victim_dir" / "data.bin").write_text("keep me too")
    with helpers.moto_s3(tmp_path) as aws:
        s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket="victim-bucket")
        s3.put_object(Bucket="victim-bucket", Key="prod/model.tar.gz", Body=b"production")
        ckpt = torch.load(checkpoints / "last.ckpt", weights_only=True)
        (key,) = [k for k in ckpt["callbacks"] if k.startswith("EpochCheckpoints")]
        outside = f"{checkpoints}/../../victim_dir"
        ckpt["callbacks"][key].update(
            last_model_path="s3://victim-bucket/prod/model.tar.gz",
            best_model_path=outside,
            best_k_models={outside: torch.tensor(-1.0), f"{checkpoints}/../../victim.txt": 0.0},
            kth_best_model_path=outside,
            kth_value=torch.tensor(-1.0),  # val_f1 is maximised: any epoch beats it
        )
        torch.save(ckpt, checkpoints / "last.ckpt")
        _tabular_job(base, epochs=2)
        result = helpers.run_entry("train", base, env=aws)
        objects = s3.list_objects_v2(Bucket="victim-bucket").get("Contents", [])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [o["Key"] for o in objects] == ["prod/model.tar.gz"]
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert (tmp_path / "victim_dir" / "data.bin").read_text() == "keep me too"
    assert " train: resume checkpoint=" in result.stdout
    assert "ignored=outside_checkpoints" in result.stdout
    assert re.search(r" train: epoch=2 ", result.stdout), result.stdout[-3000:]
    assert (base / "model" / "model.ckpt").is_file()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_link_planted_in_checkpoints_is_refused_and_nothing_written_through_it(tmp_path):
    """checkpoints/best.ckpt as a link to a folder elsewhere: Lightning saves to a
    temporary file and moves it onto the name, which moved the checkpoint into that
    folder. The job now fails before training, naming the link."""
    base = tmp_path / "opt_ml"
    _tabular_job(base, epochs=1)
    victim = tmp_path / "victim_dir"
    victim.mkdir()
    (victim / "callbacks.py").write_text("original\n")
    (base / "checkpoints").mkdir()
    (base / "checkpoints" / "best.ckpt").symlink_to(victim, target_is_directory=True)
    result = helpers.run_entry("train", base)
    assert sorted(p.name for p in victim.iterdir()) == ["callbacks.py"], "written through"
    assert result.returncode == 1, result.stdout[-3000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith("checkpoints/best.ckpt is a symbolic link"), reason


# --- unclean failures: each a one-line reason naming the file or key (item 7) ---------
def _deep(depth: int) -> bytes:
    return b'{"epochs": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    "raw,reason",
    [
        (_deep(100_000), r"^hyperparameters\.json is not valid JSON: nested too deeply$"),
        (b'{"epochs": "\xff\xfe"}', r"^hyperparameters\.json is not valid JSON: .*utf-8"),
        (b'{"seed": "1e30"}', r"^seed='1e30' is out of range"),
        (b'{"seed": "-1"}', r"^seed='-1' is out of range"),
    ],
    ids=["deep", "not-utf8", "huge-seed", "negative-seed"],
)
def test_a_broken_hyperparameters_file_fails_with_a_reason_naming_it(
    plugin_name, base_dir, run_train, raw, reason
):
    helpers.write_sample_job(base_dir, {"model": plugin_name}, model=plugin_name)
    (base_dir / "input" / "config" / "hyperparameters.json").write_bytes(raw)
    result = run_train(base_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(reason, helpers.failure_reason(base_dir)), helpers.failure_reason(base_dir)
    assert "Traceback" not in result.stdout  # a UserError: the reason is the whole story


@pytest.mark.parametrize(
    "backbone,reason",
    [
        ("x" * 5000, r"^hyperparameter 'backbone' is 5000 characters long; at most 4096$"),
        ("/tmp/" + "x" * 300, r"^backbone is not a usable path: File name too long$"),
    ],
    ids=["5000-characters", "300-character-name"],
)
def test_an_unusable_backbone_fails_with_a_reason_naming_it(base_dir, run_train, backbone, reason):
    helpers.write_sample_job(base_dir, {"backbone": backbone})
    result = run_train(base_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(reason, helpers.failure_reason(base_dir)), helpers.failure_reason(base_dir)


WRONG_SHAPES = {"list": "[]", "string": '"x"', "null": "null", "number": "7"}


@pytest.fixture
def model_copy(plugin_trained, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(plugin_trained / "model", out)
    return out


def load(model_dir: Path):
    from sagemaker_platform import registry
    from sagemaker_platform.runtime import Runtime

    runtime = Runtime.resolve("fp32", "cpu", 1, 8, None)
    return registry.plugin_for(model_dir).load(model_dir, runtime)


@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_every_json_file_of_a_model_directory_of_the_wrong_shape_is_named(model_copy, shape):
    """Each JSON file the plug-in wrote, replaced by JSON of another shape: loading fails
    with a UserError naming that file, never an AttributeError from deep inside."""
    from sagemaker_platform.errors import UserError

    files = sorted(model_copy.rglob("*.json"))
    assert files
    for path in files:
        good = path.read_text()
        path.write_text(WRONG_SHAPES[shape])
        try:
            with pytest.raises(UserError, match=re.escape(path.name)):
                load(model_copy)
        finally:
            path.write_text(good)
    load(model_copy)  # and whole again, it loads


@pytest.mark.parametrize("labels", [[None, "b"], [{"a": 1}, "b"], ["a", "a"], [True, False]])
def test_labels_that_are_no_labels_are_refused_not_served(plugin_name, model_copy, labels):
    from sagemaker_platform.errors import UserError

    if (model_copy / "labels.json").is_file():  # the text and image classifiers'
        path, doc = model_copy / "labels.json", labels
    else:
        path = model_copy / "schema.json"
        doc = json.loads(path.read_text())
        if not doc.get("labels"):
            pytest.skip("a regression schema has no labels")
        doc["labels"] = labels + doc["labels"][2:]
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="must list distinct labels"):
        load(model_copy)
