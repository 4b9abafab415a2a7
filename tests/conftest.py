"""Shared fixtures; tests are marked `unit` or `integration` by their folder."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "model"
sys.path.insert(0, str(ROOT))

from tests import cputime, helpers, parallel  # noqa: E402
from tests.parallel import shared_dir  # noqa: E402

# `make mutate` runs tests/unit with this profile ([tool.mutmut] pytest_add_cli_args): no
# 200 ms deadline and the same examples every run, so a mutant is killed by what it
# computes, never by a slow moment of a shared machine or a lucky draw.
settings.register_profile("mutate", deadline=None, derandomize=True, database=None)


def pytest_collection_modifyitems(items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "unit" in parts:
            item.add_marker(pytest.mark.unit)
        elif "integration" in parts:
            item.add_marker(pytest.mark.integration)


def pytest_configure(config):
    config.pluginmanager.register(parallel, "tests-parallel")
    config.pluginmanager.register(cputime, "tests-cputime")


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A small random BERT with the packaged MiniLM tokenizer: trains in seconds."""
    return shared_dir(tmp_path_factory, "tiny_backbone", helpers.make_tiny_backbone)


@pytest.fixture
def base_dir(tmp_path) -> Path:
    """An empty /opt/ml tree."""
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "data").mkdir(parents=True)
    return root


@pytest.fixture
def run_train():
    def run(base: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
        return helpers.run_entry("train", base, timeout=timeout, env=env)

    return run


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, tiny_backbone) -> Path:
    """A base dir holding a model trained on the sample data with the tiny backbone."""
    hp = {"backbone": str(tiny_backbone), "epochs": "2", "max_length": "32"}
    return _trained(tmp_path_factory, "text_classifier", hp)


def _trained(tmp_path_factory, plugin_name: str, hp: dict[str, str]) -> Path:
    """The base dir of a job of the plug-in's sample data, trained once per run (see
    `shared_dir`). The job's log lies beside (not inside) the /opt/ml tree, for tests of
    what it printed: train.stdout, train.stderr."""

    def train(folder: Path) -> None:
        base = folder / "opt_ml"
        helpers.write_sample_job(base, hp, model=plugin_name)
        result = helpers.run_entry("train", base, timeout=300)
        (folder / "train.stdout").write_text(result.stdout)
        (folder / "train.stderr").write_text(result.stderr)
        assert result.returncode == 0, result.stdout + result.stderr

    return shared_dir(tmp_path_factory, f"trained-{plugin_name}", train) / "opt_ml"


__all__ = ["MODEL_DIR", "ROOT", "json", "os"]


# --- every plug-in through the platform tests ----------------------------------------
def _plugins() -> tuple[str, ...]:
    """Every plug-in in model/plugins/ (yours too, once it is there), and those named in
    PLATFORM_TEST_PLUGINS (comma-separated, for plug-ins kept on PYTHONPATH)."""
    sys.path.insert(0, str(MODEL_DIR))
    from sagemaker_platform import registry

    extra = [n.strip() for n in os.environ.get("PLATFORM_TEST_PLUGINS", "").split(",")]
    return tuple(dict.fromkeys([*registry.available(), *filter(None, extra)]))


PLUGINS = _plugins()


@pytest.fixture(scope="session", params=PLUGINS)
def plugin_name(request) -> str:
    """Each shipped plug-in in turn: tests that take it are about the platform."""
    return request.param


@pytest.fixture(scope="session")
def plugin_hp(plugin_name, tiny_backbone) -> dict[str, str]:
    """Hyperparameters that train the plug-in in seconds (text: the tiny backbone)."""
    return helpers.test_hyperparameters(plugin_name, tiny_backbone)


@pytest.fixture
def png_plugin(tmp_path, monkeypatch):
    """The outside plug-in (tests/outside_plugin.py: PNG and JSON in, JSON out) written
    under tmp_path and importable by name in this process; forgotten afterwards, so no
    test imports another test's copy."""
    from tests import outside_plugin

    outside_plugin.write(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield outside_plugin.NAME
    outside_plugin.forget()


def _train(plugin_name: str, hp: dict[str, str], tmp_path_factory, request) -> Path:
    if plugin_name == "text_classifier":
        return request.getfixturevalue("trained_model")
    return _trained(tmp_path_factory, plugin_name, hp)


@pytest.fixture(scope="session")
def plugin_trained(plugin_name, plugin_hp, tmp_path_factory, request) -> Path:
    """A base dir holding a model of the plug-in trained on its sample data."""
    return _train(plugin_name, plugin_hp, tmp_path_factory, request)


@pytest.fixture(scope="session")
def trained_plugins(tiny_backbone, tmp_path_factory, request) -> dict[str, Path]:
    """Every plug-in's trained base dir at once (the same ones `plugin_trained` gives),
    for a server that holds them side by side (a multi-model endpoint)."""
    return {
        name: _train(
            name, helpers.test_hyperparameters(name, tiny_backbone), tmp_path_factory, request
        )
        for name in PLUGINS
    }


@pytest.fixture(scope="session")
def plugin_server(plugin_trained):
    """The plug-in's model served by the real stack, fp32, on a loopback port."""
    with helpers.Server(plugin_trained, env={"MODEL_SERVER_PRECISION": "fp32"}) as srv:
        srv.wait_ready()
        yield srv


@pytest.fixture(scope="session")
def server(trained_model):
    """One serving stack shared by the read-only HTTP tests. fp32, so that a text's
    answer is the same whatever shares its batch (int8 quantizes per batch)."""
    with helpers.Server(trained_model, env={"MODEL_SERVER_PRECISION": "fp32"}) as srv:
        srv.wait_ready()
        yield srv


@pytest.fixture
def root_logging():
    """The root logger, its handlers and level put back afterwards: for tests of code that
    sets up logging (`logs.setup`, gunicorn's post_fork). Left bound to pytest's captured
    stdout, a later pytest session in the same process (mutmut's stats run, then its clean
    run) would log to a closed file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def offline_aws(monkeypatch, tmp_path):
    """AWS settings scrubbed and every endpoint a closed loopback port.

    A launcher check that must come before any request is then honest: had a request
    gone out first, it would fail with a connection error instead of the expected one.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("SAGEMAKER_ROLE_ARN", "IMAGE_URI"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")


# --- every AWS request checked against the API model (tests/aws_api.py) ---------------------
@pytest.fixture(scope="session", autouse=True)
def _aws_requests_checked_in_session():
    """Every botocore client call of the test process first checks its parameters against
    the API model's constraints (max lengths and counts, patterns, enums): what AWS would
    refuse fails here, though botocore and moto let it through."""
    from tests import aws_api

    with aws_api.checked_clients():
        yield


@pytest.fixture(autouse=True)
def aws_requests_checked(_aws_requests_checked_in_session):
    """Fails the test if a request it made broke the API model, even where the code under
    test caught the error (a CLI turns it into an exit status)."""
    from tests import aws_api

    aws_api.reset()
    yield
    found = aws_api.violations()
    assert not found, "AWS would refuse requests this test made:\n" + "\n".join(found)
