"""A model directory whose JSON is of the right shape but holds wrong values.

Each case plants one value in a copy of a trained model directory, for every plug-in,
and checks that the plug-in's `check` (what `serve` runs before starting anything)
refuses it with `model directory is corrupt: <file>: <key> ...`, or for what only the
weights can tell, that loading does. Before, these loaded and then answered every
request with a 500 or a null, or failed the worker with a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests import helpers

NAN, INF = float("nan"), float("inf")

# plug-in -> (file, key path, value planted, what the error must say)
CASES = {
    "tabular": [
        ("schema.json", ["numeric", 0, "std"], "x", r"schema.json: numeric\[0\].std is 'x'"),
        ("schema.json", ["numeric", 0, "std"], 0, r"schema.json: numeric\[0\].std is 0, expected"),
        ("schema.json", ["numeric", 0, "std"], -2.5, r"numeric\[0\].std is -2.5"),
        ("schema.json", ["numeric", 0, "std"], 1e-300, r"numeric\[0\].std is 1e-300"),
        ("schema.json", ["numeric", 1, "std"], INF, r"numeric\[1\].std is inf"),
        ("schema.json", ["numeric", 0, "mean"], NAN, r"numeric\[0\].mean is nan"),
        ("schema.json", ["numeric", 0, "mean"], True, r"numeric\[0\].mean is True"),
        ("schema.json", ["numeric", 0, "mean"], 10**400, r"numeric\[0\].mean is 1000"),
        ("schema.json", ["numeric", 0, "name"], ["a"], r"numeric\[0\].name is \['a'\]"),
        ("schema.json", ["numeric", 0], "area", r"numeric\[0\] is 'area', expected a JSON object"),
        ("schema.json", ["features", 0], {"a": 1}, r"schema.json: features\[0\] is \{'a': 1\}"),
        ("schema.json", ["features", 1], "area_m2", r"schema.json: features lists 'area_m2' twice"),
        ("schema.json", ["categorical", 0, "categories", 0], 7, r"categories\[0\] is 7"),
        ("schema.json", ["categorical", 0, "categories"], "ab", r"categories is 'ab'"),
        ("schema.json", ["task"], "clustering", r"schema.json: task is 'clustering'"),
        ("schema.json", ["task"], "regression", r"schema.json lacks 'target'"),
        ("schema.json", ["format_version"], True, r"has format True in schema.json"),
        ("schema.json", ["label_column"], 5, r"schema.json: label_column is 5"),
        ("schema.json", ["labels"], ["only"], r"schema.json: labels lists fewer than two"),
        ("network.json", ["hidden_sizes"], ["64"], r"network.json: hidden_sizes\[0\] is '64'"),
        ("network.json", ["hidden_sizes"], "64", r"network.json: hidden_sizes is '64'"),
        ("network.json", ["hidden_sizes", 0], 10**6, r"hidden_sizes\[0\] is 1000000"),
        ("network.json", ["hidden_sizes", 0], 0, r"hidden_sizes\[0\] is 0"),
        ("network.json", ["cardinalities", 0], -1, r"network.json: cardinalities\[0\] is -1"),
        ("network.json", ["cardinalities", 0], 3, r"network.json does not match schema.json"),
        ("network.json", ["num_numeric"], 4.0, r"network.json: num_numeric is 4.0"),
        ("network.json", ["dropout"], "x", r"network.json: dropout is 'x'"),
        ("network.json", ["dropout"], 2, r"network.json: dropout is 2"),
        ("network.json", ["outputs"], 7, r"does not match schema.json: outputs is 7"),
        ("network.json", ["outputs"], None, r"network.json: outputs is None"),
    ],
    "text_classifier": [
        ("classifier.json", ["pooling"], ["mean"], r"classifier.json: pooling is \['mean'\]"),
        ("classifier.json", ["pooling"], "max", r"classifier.json: pooling is 'max'"),
        ("classifier.json", ["num_classes"], "4", r"classifier.json: num_classes is '4'"),
        ("classifier.json", ["format_version"], True, r"has format True"),
        ("preprocessing.json", ["max_length"], "abc", r"preprocessing.json: max_length is 'abc'"),
        ("preprocessing.json", ["max_length"], -5, r"preprocessing.json: max_length is -5"),
        ("preprocessing.json", ["max_length"], 32.0, r"preprocessing.json: max_length is 32.0"),
        ("preprocessing.json", ["max_length"], 10**9, r"max_length is 1000000000"),
        ("preprocessing.json", ["max_length"], 4000, r"max_length is 4000, more than backbone"),
        ("preprocessing.json", ["normalization"], "NFX", r"normalization is 'NFX'"),
        ("preprocessing.json", ["pad_id"], -1, r"preprocessing.json: pad_id is -1"),
        ("preprocessing.json", ["pad_id"], 10**6, r"pad_id is 1000000, outside backbone"),
        ("preprocessing.json", ["pad_token"], 0, r"preprocessing.json: pad_token is 0"),
        ("backbone/config.json", ["hidden_size"], "32", r"config.json: hidden_size is '32'"),
        ("backbone/config.json", ["vocab_size"], -1, r"config.json: vocab_size is -1"),
        ("backbone/config.json", ["num_hidden_layers"], 1.5, r"num_hidden_layers is 1.5"),
        ("backbone/config.json", ["layer_norm_eps"], "x", r"config.json: layer_norm_eps is 'x'"),
        ("backbone/config.json", ["pad_token_id"], [0], r"config.json: pad_token_id is \[0\]"),
        ("backbone/config.json", ["model_type"], 5, r"config.json: model_type is 5"),
    ],
    "image_classifier": [
        ("network.json", ["image_size"], "32", r"network.json: image_size is '32'"),
        ("network.json", ["image_size"], 10**6, r"network.json: image_size is 1000000"),
        ("network.json", ["width"], -1, r"network.json: width is -1"),
        ("network.json", ["blocks"], 2.5, r"network.json: blocks is 2.5"),
        ("network.json", ["dropout"], NAN, r"network.json: dropout is nan"),
        ("network.json", ["num_classes"], 3, r"labels.json does not match network.json"),
        ("network.json", ["format_version"], True, r"network.json has format True"),
        ("labels.json", [0], None, r"labels.json must list distinct labels"),
        ("labels.json", [1], "circle", r"labels.json must list distinct labels"),
    ],
}
# What only the weights can tell: load (in the worker) names the mismatch, and builds
# nothing of the size the JSON claims first (65536 x 65536 floats would be 16 GB).
HUGE = ("network.json", ["hidden_sizes"], [65536, 65536], r"model.ckpt does not fit network.json")
LOAD_CASES = {
    "tabular": [HUGE],
    "image_classifier": [
        ("network.json", ["width"], 128, r"model.ckpt does not fit network.json"),
    ],
    "text_classifier": [
        ("backbone/config.json", ["intermediate_size"], 65536, r"model.ckpt does not fit"),
        ("backbone/config.json", ["vocab_size"], 1000, r"tokenizer.json has token id \d+, outside"),
    ],
}


@pytest.fixture
def model_copy(plugin_trained, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(plugin_trained / "model", out)
    return out


def plant(model_dir: Path, file: str, path: list, value) -> None:
    doc = json.loads((model_dir / file).read_text())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    (model_dir / file).write_text(json.dumps(doc))


def load(model_dir: Path):
    from sagemaker_platform import registry
    from sagemaker_platform.runtime import Runtime

    runtime = Runtime.resolve("fp32", "cpu", 1, 8, None)
    return registry.plugin_for(model_dir).load(model_dir, runtime)


def check(model_dir: Path) -> None:
    from sagemaker_platform import registry

    registry.check_model_dir(model_dir)


def corrupt(message: str) -> str:
    return r"^model directory (is corrupt: )?.*" + message


def test_every_case_is_planted_in_a_key_the_plugin_writes(plugin_name, plugin_trained):
    """A case that names a key the model directory lacks would test nothing."""
    for file, path, _, _ in CASES[plugin_name] + LOAD_CASES[plugin_name]:
        doc = json.loads((plugin_trained / "model" / file).read_text())
        for key in path[:-1]:
            doc = doc[key]
        last = path[-1]
        assert last < len(doc) if isinstance(doc, list) else last in doc, (file, path)


def test_bad_values_are_refused_before_serving_starts(plugin_name, model_copy):
    """`serve`'s check, without torch: each value named with its file and key."""
    from sagemaker_platform.errors import UserError

    for file, path, value, message in CASES[plugin_name]:
        good = (model_copy / file).read_text()
        plant(model_copy, file, path, value)
        try:
            with pytest.raises(UserError, match=corrupt(message)):
                check(model_copy)
            with pytest.raises(UserError, match=corrupt(message)):
                load(model_copy)
        finally:
            (model_copy / file).write_text(good)
    check(model_copy)
    load(model_copy)  # whole again, it loads


def test_json_that_does_not_fit_the_weights_fails_the_load_naming_it(plugin_name, model_copy):
    from sagemaker_platform.errors import UserError

    for file, path, value, message in LOAD_CASES[plugin_name]:
        good = (model_copy / file).read_text()
        plant(model_copy, file, path, value)
        try:
            with pytest.raises(UserError, match=message):
                load(model_copy)
        finally:
            (model_copy / file).write_text(good)


def test_serve_fails_at_start_in_one_line_naming_the_value(plugin_name, plugin_trained, tmp_path):
    """The whole entry point: `serve` exits 1 before starting nginx or a worker, with
    one line that names the file, the key and the value."""
    base = tmp_path / "opt_ml"
    shutil.copytree(plugin_trained / "model", base / "model")
    file, path, value, message = CASES[plugin_name][0]
    plant(base / "model", file, path, value)
    with helpers.Server(base) as server:
        assert server.proc.wait(60) == 1
        out = server.output()
    lines = [line for line in out.splitlines() if "cannot serve" in line]
    assert len(lines) == 1, out
    assert re.search(message, lines[0]), out
    assert "Traceback" not in out, out


def test_a_network_json_of_huge_layers_is_refused_without_allocating_them(plugin_name, request):
    """hidden_sizes [65536, 65536] describes 16 GB of weights: the load names the
    mismatch with model.ckpt in a process that may not map even 6 GB."""
    import subprocess
    import sys

    if plugin_name != "tabular":
        pytest.skip("the tabular plug-in's network.json")
    model_copy = request.getfixturevalue("model_copy")
    file, path, value, message = HUGE
    plant(model_copy, file, path, value)
    code = f"""
import resource, sys
sys.path.insert(0, {str(helpers.MODEL_DIR)!r})
from pathlib import Path
from sagemaker_platform import registry
from sagemaker_platform.errors import UserError
from sagemaker_platform.runtime import Runtime
import torch
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.RLIM_INFINITY))
model_dir = Path({str(model_copy)!r})
try:
    registry.plugin_for(model_dir).load(model_dir, Runtime.resolve("fp32", "cpu", 1, 8, None))
except UserError as exc:
    print("USER ERROR", exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert re.search("USER ERROR " + message, result.stdout), result.stdout + result.stderr


def test_a_model_that_loads_but_cannot_answer_never_says_ready(plugin_name, model_copy, tmp_path):
    """NaN weights pass every check of the files and load; the warm-up's sample request
    finds that no answer would be finite: /ping never says 200, and `serve` exits with
    the reason in one line, instead of a green endpoint answering nulls or 500s."""
    import requests
    import torch

    ckpt = model_copy / "model.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    # the last matrix of the network: its output layer, whatever the plug-in names it
    state = checkpoint["state_dict"]
    head = [k for k, v in state.items() if k.startswith("network.") and v.dim() == 2][-1]
    state[head][:] = float("nan")
    torch.save(checkpoint, ckpt)
    base = tmp_path / "opt_ml"
    base.mkdir()
    shutil.move(model_copy, base / "model")
    check(base / "model")  # nothing wrong with the files themselves
    with helpers.Server(base, env={"MODEL_SERVER_WORKERS": "1"}) as server:
        while server.proc.poll() is None:
            try:
                r = requests.get(server.url + "/ping", timeout=2)
                assert r.status_code != 200, server.output()
            except requests.ConnectionError:
                pass
        assert server.proc.wait() == 1
        out = server.output()
    lines = [line for line in out.splitlines() if "model failed to load" in line]
    assert len(lines) == 1, out
    assert "warm-up: the plug-in's sample request" in lines[0], out
    assert "not finite" in lines[0], out
    assert "Traceback" not in out, out
