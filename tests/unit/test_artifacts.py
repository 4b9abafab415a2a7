"""The model directory's platform part (sagemaker_platform/artifacts.py): model.ckpt and
plugin.json as written and read back, and the checks every plug-in runs on the values of
its JSON files. Everything in a model directory is hostile until checked: each refusal is a
UserError whose one line names the file and the key, and shows the bad value cut short."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch

from sagemaker_platform import artifacts
from sagemaker_platform.artifacts import (
    check_choice,
    check_distinct,
    check_int,
    check_labels,
    check_list,
    check_number,
    check_str,
    member,
)
from sagemaker_platform.errors import UserError

CORRUPT = "model directory is corrupt: "


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(UserError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- model.ckpt ----------------------------------------------------------------------------


class OnlyDtype:
    dtype = "float32"

    def __str__(self):
        return "<only a dtype>"


class OnlyShape:
    shape = (2,)

    def __str__(self):
        return "<only a shape>"


def lightning_checkpoint() -> dict:
    weight = torch.ones(2, 3, requires_grad=True)
    return {
        "state_dict": {"network.weight": weight * 2, "head.bias": torch.zeros(3)},
        "hyper_parameters": {
            "lr": 0.5,
            "layers": (4, 2),
            "labels": ["a", None, True],
            "nested": {7: {"name": "x"}},
            "scale": torch.tensor([1.5, 2.5]),
            "path": Path("/data/train"),
            "namespace": types.SimpleNamespace(a=1),
            "dtype_only": OnlyDtype(),
            "shape_only": OnlyShape(),
            "nothing": None,
        },
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "optimizer_states": [{"state": {}}],
        "callbacks": {"ModelCheckpoint": {"best": 0.1}},
    }


def test_write_weights_keeps_the_plain_part_only_and_it_loads_weights_only(tmp_path):
    out = tmp_path / "a" / "b" / "model"  # parents are made
    artifacts.write_weights(out, lightning_checkpoint())
    # custom classes became their str, so weights_only=True loads the file
    loaded = torch.load(out / artifacts.CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(loaded) == {
        "state_dict",
        "hyper_parameters",
        "epoch",
        "global_step",
        "pytorch-lightning_version",
    }
    assert loaded["epoch"] == 3 and type(loaded["epoch"]) is int
    assert loaded["global_step"] == 120
    assert loaded["pytorch-lightning_version"] == "2.4.0"
    hp = loaded["hyper_parameters"]
    assert hp["lr"] == 0.5
    assert hp["layers"] == [4, 2]
    assert hp["labels"] == ["a", None, True] and hp["labels"][2] is True
    assert hp["nested"] == {"7": {"name": "x"}}
    assert torch.equal(hp["scale"], torch.tensor([1.5, 2.5]))
    assert hp["path"] == "/data/train"
    assert hp["namespace"] == "namespace(a=1)"
    assert hp["dtype_only"] == "<only a dtype>"
    assert hp["shape_only"] == "<only a shape>"
    assert hp["nothing"] is None
    weights = loaded["state_dict"]
    assert list(weights) == ["network.weight", "head.bias"]
    assert torch.equal(weights["network.weight"], torch.full((2, 3), 2.0))
    assert not weights["network.weight"].requires_grad  # detached


def test_write_weights_overwrites_an_existing_model_directory(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    artifacts.write_weights(out, {"state_dict": {"w": torch.ones(1)}})
    artifacts.write_weights(out, {"state_dict": {"w": torch.zeros(1)}, "epoch": 1})
    loaded = artifacts.load_checkpoint(out)
    assert set(loaded) == {"state_dict", "epoch"}
    assert torch.equal(loaded["state_dict"]["w"], torch.zeros(1))


def test_load_state_dict_takes_a_prefix_off_or_keeps_every_weight(tmp_path):
    artifacts.write_weights(tmp_path, lightning_checkpoint())
    assert list(artifacts.load_state_dict(tmp_path)) == ["network.weight", "head.bias"]
    assert list(artifacts.load_state_dict(tmp_path, prefix="network.")) == ["weight"]


def test_a_checkpoint_saved_on_a_gpu_loads_on_a_cpu_only_host(tmp_path, monkeypatch):
    # torch.save records each storage's device; a training instance with a GPU can leave
    # "cuda:0" in model.ckpt (a tensor among the hyperparameters), and the serving host
    # has none: map_location="cpu" must bring every storage to the CPU.
    import torch.serialization

    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / artifacts.CHECKPOINT)
    monkeypatch.undo()
    weights = artifacts.load_state_dict(tmp_path)
    assert weights["w"].device.type == "cpu"
    assert torch.equal(weights["w"], torch.ones(2))


class Payload:
    """What a hostile model.ckpt could carry: unpickling it runs `Path.touch`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_code_in_model_ckpt_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "epoch": Payload(marker)}, tmp_path / artifacts.CHECKPOINT)
    # an image or user setting torch's escape hatch for calls that leave weights_only
    # unset does not reach load_checkpoint, which sets it
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UserError) as err:
        artifacts.load_checkpoint(tmp_path)
    assert not marker.exists()
    cause = str(err.value.__cause__)
    assert str(err.value) == f"cannot load model.ckpt: {cause.splitlines()[0]}"
    assert "\n" in cause  # torch's message has several lines: the first is shown


def test_a_checkpoint_that_is_not_one_is_a_user_error_of_one_line(tmp_path):
    (tmp_path / artifacts.CHECKPOINT).write_bytes(b"PK\x03\x04 not a zip")
    message = refusal(artifacts.load_checkpoint, tmp_path)
    assert message.startswith("cannot load model.ckpt: PytorchStreamReader failed")


def test_a_torch_error_without_a_message_is_still_a_user_error(tmp_path):
    # a zip that passes check_weights, its pickle cut off: torch raises EOFError('')
    torch.save({"state_dict": {}}, tmp_path / "good.ckpt")
    import zipfile

    with (
        zipfile.ZipFile(tmp_path / "good.ckpt") as good,
        zipfile.ZipFile(tmp_path / artifacts.CHECKPOINT, "w") as cut,
    ):
        for name in good.namelist():
            cut.writestr(name, b"" if name.endswith("data.pkl") else good.read(name))
    artifacts.check_weights(tmp_path)
    assert refusal(artifacts.load_checkpoint, tmp_path) == "cannot load model.ckpt: EOFError"


def test_check_weights_wants_a_zip_named_model_ckpt(tmp_path):
    assert refusal(artifacts.check_weights, tmp_path) == (
        f"model directory is incomplete: model.ckpt is missing from {tmp_path}"
    )
    (tmp_path / artifacts.CHECKPOINT).mkdir()
    assert "is missing" in refusal(artifacts.check_weights, tmp_path)
    (tmp_path / artifacts.CHECKPOINT).rmdir()
    (tmp_path / artifacts.CHECKPOINT).write_bytes(b"\x80\x02}q\x00.")  # a bare pickle
    assert refusal(artifacts.check_weights, tmp_path) == (
        "model directory is corrupt: model.ckpt is not a torch checkpoint"
    )
    artifacts.write_weights(tmp_path, {"state_dict": {"w": torch.ones(1)}})
    artifacts.check_weights(tmp_path)


# --- plugin.json ---------------------------------------------------------------------------


def test_write_manifest_writes_one_key_a_line_and_reads_back(tmp_path):
    out = tmp_path / "a" / "model"
    artifacts.write_manifest(out, "tabular", "plugins.tabular")
    assert (out / "plugin.json").read_text() == (
        '{\n "format_version": 1,\n "plugin": "tabular",\n "module": "plugins.tabular"\n}\n'
    )
    assert artifacts.read_manifest(out) == {
        "format_version": 1,
        "plugin": "tabular",
        "module": "plugins.tabular",
    }
    artifacts.write_manifest(out, "image_classifier", "plugins.image_classifier")
    assert artifacts.read_manifest(out)["plugin"] == "image_classifier"


def test_read_manifest_without_a_model_directory(tmp_path):
    assert refusal(artifacts.read_manifest, tmp_path / "model") == (
        f"no model directory at {tmp_path / 'model'}; run training first"
    )


def test_a_directory_from_before_plugin_json_is_the_text_classifiers(tmp_path):
    (tmp_path / "classifier.json").write_text("{}")
    assert artifacts.read_manifest(tmp_path) == {
        "format_version": 1,
        "plugin": "text_classifier",
        "module": "plugins.text_classifier",
    }


def test_plugin_json_wins_over_the_legacy_marker(tmp_path):
    (tmp_path / "classifier.json").write_text("{}")
    artifacts.write_manifest(tmp_path, "tabular", "plugins.tabular")
    assert artifacts.read_manifest(tmp_path)["module"] == "plugins.tabular"


def test_a_legacy_marker_that_is_a_folder_is_not_a_legacy_model(tmp_path):
    (tmp_path / "classifier.json").mkdir()
    assert refusal(artifacts.read_manifest, tmp_path) == (
        f"model directory is incomplete: plugin.json is missing from {tmp_path}"
    )


@pytest.mark.parametrize(
    "manifest, message",
    [
        ([], "model directory is corrupt: plugin.json must hold a JSON object, not list"),
        ("tabular", "model directory is corrupt: plugin.json must hold a JSON object, not str"),
        ({"format_version": 1}, "model directory is corrupt: plugin.json names no plug-in module"),
        (
            {"format_version": 1, "module": 5},
            "model directory is corrupt: plugin.json names no plug-in module",
        ),
        ({"module": "plugins.tabular"}, "model directory has format None, expected 1"),
        ({"format_version": 2, "module": "m"}, "model directory has format 2, expected 1"),
        ({"format_version": "1", "module": "m"}, "model directory has format '1', expected 1"),
        (
            {"format_version": "9" * 100, "module": "m"},
            f"model directory has format '{'9' * 56}..., expected 1",
        ),
    ],
)
def test_a_bad_plugin_json_is_refused_by_name(tmp_path, manifest, message):
    (tmp_path / "plugin.json").write_text(json.dumps(manifest))
    assert refusal(artifacts.read_manifest, tmp_path) == message


# --- read_json ----------------------------------------------------------------------------


def test_read_json_returns_any_value_without_expect(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('["a", "é"]', encoding="utf-8")
    assert artifacts.read_json(path) == ["a", "é"]
    assert artifacts.read_json(path, expect=list) == ["a", "é"]
    path.write_text("3")
    assert artifacts.read_json(path) == 3


@pytest.mark.parametrize(
    "expect, text, message",
    [
        (dict, "[1]", "labels.json must hold a JSON object, not list"),
        (list, '{"a": 1}', "labels.json must hold a JSON list, not dict"),
        (list, "null", "labels.json must hold a JSON list, not NoneType"),
        (str, "1.5", "labels.json must hold str, not float"),
    ],
)
def test_read_json_names_the_shape_it_wanted(tmp_path, expect, text, message):
    (tmp_path / "labels.json").write_text(text)
    assert refusal(artifacts.read_json, tmp_path / "labels.json", expect) == CORRUPT + message


def test_read_json_refuses_a_missing_broken_or_deep_file(tmp_path):
    path = tmp_path / "labels.json"
    assert refusal(artifacts.read_json, path) == (
        f"model directory is incomplete: labels.json is missing from {tmp_path}"
    )
    path.write_text('{"a": ')
    assert refusal(artifacts.read_json, path) == (
        CORRUPT + "labels.json is not valid JSON (Expecting value: line 1 column 7 (char 6))"
    )
    path.write_bytes(b'["\xff"]')
    assert refusal(artifacts.read_json, path).startswith(
        CORRUPT + "labels.json is not valid JSON ('utf-8' codec can't decode byte 0xff"
    )
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert refusal(artifacts.read_json, path) == CORRUPT + "labels.json is nested too deeply"


def test_read_json_refuses_an_integer_too_long_to_convert(tmp_path):
    # Python's int() refuses over 4300 digits with a ValueError that is not a
    # JSONDecodeError: it must still be the model directory's fault, not a traceback
    path = tmp_path / "schema.json"
    path.write_text('{"mean": 1' + "0" * 5000 + "}")
    assert refusal(artifacts.read_json, path).startswith(
        CORRUPT + "schema.json is not valid JSON (Exceeds the limit (4300 digits)"
    )


# --- check_labels -------------------------------------------------------------------------


def test_check_labels_takes_distinct_strings_or_integers():
    assert check_labels(["neg", "pos"], "labels.json") == ["neg", "pos"]
    assert check_labels((3, 1, "x"), "labels.json") == [3, 1, "x"]


@pytest.mark.parametrize(
    "labels",
    [
        [],
        ["a", "a"],
        [1, 1],
        ["a", None],
        [None],
        ["a", True],
        ["a", 1.5],
        ["a", ["b"]],
        {"a": 1},
        "ab",
        None,
        3,
    ],
)
def test_check_labels_refuses(labels):
    assert refusal(check_labels, labels, "labels.json") == (
        CORRUPT + "labels.json must list distinct labels, each a string or an integer"
    )


# --- values in the JSON: shown, first_line, member and the checks -------------------------


def test_shown_cuts_a_long_value_to_60_characters():
    assert artifacts.shown("x" * 58) == "'" + "x" * 58 + "'"  # 60: kept
    cut = artifacts.shown("x" * 59)  # 61: cut
    assert cut == "'" + "x" * 56 + "..."
    assert len(cut) == 60
    assert artifacts.shown([1, 2], limit=5) == "[1, 2]"[:2] + "..."


def test_first_line_of_an_exception():
    assert artifacts.first_line(ValueError("\n  first\nsecond")) == "first"
    assert artifacts.first_line(ValueError()) == "ValueError"
    assert artifacts.first_line(KeyError()) == "KeyError"


def test_member_names_the_document_and_the_key():
    where = "schema.json: numeric[0]"
    assert member({"std": 2.0}, "std", where) == 2.0
    assert refusal(member, [1, 2], "std", where) == (
        CORRUPT + "schema.json: numeric[0] is [1, 2], expected a JSON object"
    )
    assert refusal(member, {"mean": 0}, "std", where) == (
        CORRUPT + "schema.json: numeric[0] lacks 'std'"
    )


def test_check_int_takes_both_ends_of_its_range():
    assert check_int(1, "w", 1, 5) == 1
    assert check_int(5, "w", 1, 5) == 5
    for bad, shown in ((6, "6"), (0, "0"), (True, "True"), (2.0, "2.0"), ("3", "'3'")):
        assert refusal(check_int, bad, "config.json: size", 1, 5) == (
            CORRUPT + f"config.json: size is {shown}, expected an integer from 1 to 5"
        )


WHERE = "schema.json: numeric[0].std"


def number_refusal(value, expected, **kwargs) -> None:
    assert refusal(check_number, value, WHERE, **kwargs) == (
        CORRUPT + f"{WHERE} is {artifacts.shown(value)}, expected {expected}"
    )


def test_check_number_any_finite_number():
    assert check_number(-2, WHERE) == -2.0 and type(check_number(-2, WHERE)) is float
    assert check_number(1e300, WHERE) == 1e300
    for bad in ("x", True, None, [1.0], float("nan"), float("inf"), -float("inf")):
        number_refusal(bad, "a finite number")
    number_refusal(10**400, "a finite number")  # too large for a float
    assert artifacts.shown(10**400).endswith("...")


def test_check_number_positive_is_above_zero():
    assert check_number(0.5, WHERE, positive=True) == 0.5
    assert check_number(1e-9, WHERE, positive=True) == 1e-9
    for bad in (0, 0.0, -1):
        number_refusal(bad, "a finite number above 0", positive=True)
    number_refusal("x", "a finite number above 0", positive=True)


def test_check_number_lo_only():
    assert check_number(0.5, WHERE, lo=0.5) == 0.5
    number_refusal(0.25, "a finite number of at least 0.5", lo=0.5)
    number_refusal(-1, "a finite number above 0 of at least -2", lo=-2, positive=True)
    assert check_number(1, WHERE, lo=-2, positive=True) == 1.0


def test_check_number_hi_only():
    assert check_number(100, WHERE, hi=100) == 100.0
    assert check_number(-1e9, WHERE, hi=100) == -1e9
    number_refusal(100.5, "a finite number of at most 100", hi=100)


def test_check_number_from_lo_to_hi():
    assert check_number(0, WHERE, lo=0, hi=1) == 0.0
    assert check_number(1, WHERE, lo=0, hi=1) == 1.0
    number_refusal(1.5, "a finite number from 0 to 1", lo=0, hi=1)
    number_refusal(-0.5, "a finite number from 0 to 1", lo=0, hi=1)


def test_check_str():
    assert check_str("a", "config.json: pooling") == "a"
    assert check_str("", "config.json: pooling", empty=True) == ""
    where = "config.json: pooling"
    assert refusal(check_str, "", where) == (
        CORRUPT + "config.json: pooling is '', expected a non-empty string"
    )
    assert refusal(check_str, 5, where) == (
        CORRUPT + "config.json: pooling is 5, expected a non-empty string"
    )
    assert refusal(check_str, None, where, empty=True) == (
        CORRUPT + "config.json: pooling is None, expected a string"
    )


def test_check_choice():
    choices = ("mean", "cls")
    assert check_choice("cls", "config.json: pooling", choices) == "cls"
    for bad, shown in (("max", "'max'"), (["mean"], "['mean']"), (None, "None")):
        assert refusal(check_choice, bad, "config.json: pooling", choices) == (
            CORRUPT + f"config.json: pooling is {shown}, expected one of 'mean', 'cls'"
        )


def test_check_list():
    assert check_list([], "schema.json: numeric") == []
    assert refusal(check_list, {"a": 1}, "schema.json: numeric") == (
        CORRUPT + "schema.json: numeric is {'a': 1}, expected a JSON list"
    )
    assert refusal(check_list, (1,), "schema.json: numeric") == (
        CORRUPT + "schema.json: numeric is (1,), expected a JSON list"
    )


def test_check_distinct():
    assert check_distinct(["a", "b", None], "schema.json: columns") == ["a", "b", None]
    assert refusal(check_distinct, ["a", "b", "a"], "schema.json: columns") == (
        CORRUPT + "schema.json: columns lists 'a' twice"
    )
    assert refusal(check_distinct, [1, 2, 3, 2], "schema.json: columns") == (
        CORRUPT + "schema.json: columns lists 2 twice"
    )
