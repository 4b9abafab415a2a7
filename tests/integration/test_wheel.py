"""Issue 26: the built wheel, installed away from the checkout, runs `byoc-launch`.

An editable install or `python -m launcher` from the repository root reads the source
folders, so a package left out of pyproject.toml (launcher.cli, a new plug-in) or a
plug-in's SAGEMAKER_PLUGIN marker file left out of the wheel goes unnoticed there. This
builds the wheel from a copy of the sources (pip, no build isolation: no network),
installs it with `pip install --target` into an empty folder, and runs both entry points
from outside the checkout, with only that folder and the installed dependencies on the path.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests import helpers

ROOT = helpers.ROOT
SOURCES = ("pyproject.toml", "README.md", "model", "launcher")


def packages_in(root: Path, top: str) -> set[str]:
    """Dotted names of the package folders (an __init__.py) under root/top."""
    return {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources and installed into its own folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    dist = work / "dist"
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
             "--no-build-isolation", "--no-index", "-w", str(dist), "-q"]  # fmt: skip
    result = subprocess.run(build, capture_output=True, text=True, timeout=300, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("*.whl")
    target = work / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
               "--target", str(target), str(wheel), "-q"]  # fmt: skip
    result = subprocess.run(install, capture_output=True, text=True, timeout=300, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def run(installed: Path, *argv: str, script: bool = False) -> subprocess.CompletedProcess:
    """A command with the installed wheel and the venv's dependencies on the path, from a
    folder outside the checkout (so `python -m` cannot find the sources there)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), *site.getsitepackages()])
    env["HOME"] = str(installed.parent)  # no ~/.aws here
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "SAGEMAKER_ROLE_ARN"):
        env.pop(name, None)
    command = (
        [str(installed / "bin" / argv[0]), *argv[1:]] if script else [sys.executable, "-S", *argv]
    )
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=installed.parent, env=env
    )


def test_the_wheel_holds_every_package_and_plugin_marker(installed):
    for top, root in (("launcher", ROOT), ("sagemaker_platform", ROOT / "model"),
                      ("plugins", ROOT / "model")):  # fmt: skip
        assert packages_in(installed, top) == packages_in(root, top), top
    plugins = {p.parent.name for p in (ROOT / "model" / "plugins").glob("*/SAGEMAKER_PLUGIN")}
    assert plugins >= {"text_classifier", "tabular", "image_classifier"}
    for name in plugins:
        assert (installed / "plugins" / name / "SAGEMAKER_PLUGIN").is_file(), name


def test_python_m_launcher_runs_from_the_wheel(installed):
    result = run(installed, "-c", "import launcher, launcher.cli; print(launcher.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(installed)), result.stdout
    result = run(installed, "-m", "launcher", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m launcher [-h] COMMAND")


def test_byoc_launch_runs_lists_every_plugin_and_dry_runs(installed):
    result = run(installed, "byoc-launch", "--help", script=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: byoc-launch [-h] COMMAND")
    assert "  byoc-launch deploy --training-job" in result.stdout
    result = run(installed, "byoc-launch", "train", "--help", script=True)
    assert result.returncode == 0, result.stderr
    for plugin in ("text_classifier", "tabular", "image_classifier"):
        assert f"model={plugin}:" in result.stdout  # found by its SAGEMAKER_PLUGIN marker
    result = run(installed, "byoc-launch", "train", "--train", "s3://b-1/t/", "--hp",
                 "model=tabular", "--dry-run", script=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (request,) = json.loads(result.stdout)["requests"]
    assert request["params"]["HyperParameters"] == {"model": "tabular"}
