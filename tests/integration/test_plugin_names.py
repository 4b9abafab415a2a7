"""Only plug-ins are imported, through the real `model/train` and `model/serve`: a `model`
hyperparameter or a plugin.json `module` that names any other module is refused before
any of its code runs, and no job ends 0 without a model."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from sagemaker_platform import registry
from tests import helpers
from tests.integration.test_own_plugin import OWN_MODEL, OWN_PLUGIN, write_counts_job

PLANTED = "from pathlib import Path\nPath({witness!r}).write_text('imported')\n"


def browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """BROWSER set to a script that leaves a file: `antigravity` opens a web browser."""
    witness = tmp_path / "browser-opened"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\necho "$@" > {witness}\n')
    script.chmod(0o755)
    return {"BROWSER": str(script)}, witness


def job(base: Path, model: str) -> None:
    (base / "input" / "data" / "train").mkdir(parents=True)
    (base / "input" / "data" / "train" / "rows.csv").write_text("x,y\n1,2\n")
    helpers.write_hyperparameters(base, {"model": model})


@pytest.mark.parametrize(
    "model,what",
    [
        ("antigravity", "a single-file module"),
        ("this", "a single-file module"),
        ("unittest.__main__", "a single-file module"),
        ("unittest", f"has no {registry.MARKER} marker"),
        ("os.path", "a (frozen|single-file) module"),
        ("sys", "a built-in module"),
    ],
)
def test_train_refuses_a_module_that_is_no_plugin_without_running_it(tmp_path, model, what):
    env, witness = browser(tmp_path)
    base = tmp_path / "opt_ml"
    job(base, model)
    result = helpers.run_entry("train", base, env=env, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith(f"model={model!r} is not a plug-in: "), reason
    assert re.search(what, reason) and registry.MARKER in reason
    assert not witness.exists()  # antigravity opened no browser
    assert "Beautiful is better than ugly" not in result.stdout + result.stderr  # this
    assert "Ran 0 tests" not in result.stdout + result.stderr  # unittest.__main__
    assert not (base / "model" / "model.ckpt").exists()


def test_train_refuses_a_300_character_name_with_a_reason(tmp_path):
    base = tmp_path / "opt_ml"
    job(base, "x" * 300)
    result = helpers.run_entry("train", base, timeout=120)
    assert result.returncode == 1
    reason = helpers.failure_reason(base)
    assert reason.startswith("model='xxxx"), reason
    assert "is not a plug-in name" in reason and "300 characters" in reason
    assert "File name too long" not in result.stdout + result.stderr


def test_train_does_not_import_an_unmarked_package_on_pythonpath(tmp_path):
    witness = tmp_path / "witness"
    packages = tmp_path / "packages"
    (packages / "planted").mkdir(parents=True)
    (packages / "planted" / "__init__.py").write_text(PLANTED.format(witness=str(witness)))
    base = tmp_path / "opt_ml"
    job(base, "planted")
    result = helpers.run_entry("train", base, env={"PYTHONPATH": str(packages)}, timeout=120)
    assert result.returncode == 1
    reason = helpers.failure_reason(base)
    assert reason.startswith(f"model='planted' is not a plug-in: its folder {packages / 'planted'}")
    assert f"has no {registry.MARKER} marker" in reason
    assert not witness.exists()


@pytest.mark.parametrize("module", ["planted", "antigravity", "x" * 300])
def test_serve_refuses_a_plugin_json_naming_a_module_that_is_no_plugin(tmp_path, module):
    env, browser_witness = browser(tmp_path)
    witness = tmp_path / "witness"
    packages = tmp_path / "packages"
    (packages / "planted").mkdir(parents=True)
    (packages / "planted" / "__init__.py").write_text(PLANTED.format(witness=str(witness)))
    base = tmp_path / "opt_ml"
    (base / "model").mkdir(parents=True)
    manifest = {"format_version": 1, "plugin": "x", "module": module}
    (base / "model" / "plugin.json").write_text(json.dumps(manifest))
    env = {**env, "PYTHONPATH": str(packages)}
    result = helpers.run_entry("serve", base, env=env, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "cannot serve: plugin.json's module='" in output, output[-2000:]
    assert "is not a plug-in" in output
    assert not witness.exists() and not browser_witness.exists()


# A plug-in (marked) whose code exits 0 from inside the job, before any model exists.
EXITS = """
import sys

from sagemaker_platform.plugin import Plugin


class Exits(Plugin):
    name = "exits"

    def prepare(self, hp, data):
        sys.exit(0)


plugin = Exits()
"""

# The counts plug-in, but its export removes the weights the platform wrote.
VANISHING = """
from counts import Counts


class Vanishing(Counts):
    name = "vanishing"

    def export(self, hp, rows, module, model_dir):
        super().export(hp, rows, module, model_dir)
        (model_dir / "model.ckpt").unlink()


plugin = Vanishing()
"""


def marked(root: Path, name: str, files: dict[str, str]) -> None:
    (root / name).mkdir(parents=True)
    (root / name / registry.MARKER).write_text("# a SageMaker platform plug-in\n")
    for file, text in files.items():
        (root / name / file).write_text(textwrap.dedent(text))


def test_a_plugin_that_exits_0_during_the_job_fails_it(tmp_path):
    packages = tmp_path / "packages"
    marked(packages, "exits", {"__init__.py": EXITS})
    base = tmp_path / "opt_ml"
    job(base, "exits")
    result = helpers.run_entry("train", base, env={"PYTHONPATH": str(packages)}, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith("the job's code called sys.exit(0) before the job finished"), reason


def test_a_job_whose_model_is_gone_after_export_fails(tmp_path):
    packages = tmp_path / "packages"
    marked(packages, "counts", {"__init__.py": OWN_PLUGIN, "model.py": OWN_MODEL})
    marked(packages, "vanishing", {"__init__.py": VANISHING})
    base = tmp_path / "opt_ml"
    write_counts_job(base, n=16)
    helpers.write_hyperparameters(base, {"model": "vanishing", "epochs": "1", "batch_size": "8"})
    result = helpers.run_entry("train", base, env={"PYTHONPATH": str(packages)})
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    reason = helpers.failure_reason(base)
    assert reason.startswith("the job wrote no model: model/model.ckpt is missing"), reason
