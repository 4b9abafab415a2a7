"""tests/image/run.py (`make image-test`): when it skips, and how loudly; its local index.

The image test itself needs podman and minutes; these check its decisions without either.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests import helpers

SPEC = importlib.util.spec_from_file_location("image_run", helpers.ROOT / "tests/image/run.py")
image_run = importlib.util.module_from_spec(SPEC)
sys.modules["image_run"] = image_run
SPEC.loader.exec_module(image_run)


@pytest.fixture
def no_podman(monkeypatch, tmp_path):
    """A machine without podman where nothing can be installed (not root)."""
    monkeypatch.setattr(image_run, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(image_run.shutil, "which", lambda name: None)
    monkeypatch.setattr(image_run.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(image_run.sys, "platform", "linux")
    monkeypatch.delenv("IMAGE_TEST_REQUIRE", raising=False)


def test_skips_loudly_with_the_reason_and_exits_0(no_podman, capsys):
    assert image_run.main([]) == 0
    out = capsys.readouterr().out
    assert "IMAGE TEST SKIPPED" in out and "#" * 40 in out
    assert "podman, runc, debootstrap not found" in out and "apt-get" in out
    assert "NOT tested" in out


def test_a_skip_fails_when_the_image_test_is_required(no_podman, monkeypatch, capsys):
    monkeypatch.setenv("IMAGE_TEST_REQUIRE", "1")
    assert image_run.main([]) == 1
    assert "IMAGE TEST FAILED (IMAGE_TEST_REQUIRE=1)" in capsys.readouterr().out


def test_skips_when_podman_cannot_run_a_trivial_container(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(image_run, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(image_run, "ensure_tools", lambda: None)
    monkeypatch.delenv("IMAGE_TEST_REQUIRE", raising=False)
    real_run = image_run.run

    def fake_run(*argv, **kwargs):
        if argv[0] == "podman":  # imports fine, has no image yet, runs none
            code = {"run": 126, "image": 1}.get(argv[1], 0)
            err = "crun: cannot set limits: Operation not permitted" if code == 126 else ""
            return subprocess.CompletedProcess(argv, code, "", err)
        return real_run(*argv, **kwargs)

    monkeypatch.setattr(image_run, "run", fake_run)
    assert image_run.main([]) == 0
    out = capsys.readouterr().out
    assert "IMAGE TEST SKIPPED" in out and "cannot run a trivial container" in out
    assert "Operation not permitted" in out


def test_a_failed_build_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(image_run, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(image_run, "ensure_tools", lambda: None)
    monkeypatch.setattr(image_run, "probe_podman", lambda work: None)

    def broken():
        raise image_run.Failure("podman build of x exited 1")

    monkeypatch.setattr(image_run, "ensure_debian", broken)
    assert image_run.main([]) == 1
    out = capsys.readouterr().out
    assert "IMAGE TEST FAILED" in out and "exited 1" in out


def test_the_local_index_serves_each_wheel_under_its_normalized_name(monkeypatch, tmp_path):
    monkeypatch.setattr(image_run, "CACHE", tmp_path / "cache")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "typing_extensions-4.15.0-py3-none-any.whl",
                 "MarkupSafe-3.0.4-cp311-cp311-manylinux_2_17_x86_64.whl"):  # fmt: skip
        (wheels / name).write_bytes(b"wheel")
    with image_run.serve_index(wheels) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simple")
        for project, wheel in (("torch", "torch-2.13.0+cpu"), ("typing-extensions", "typing_ex"),
                               ("markupsafe", "MarkupSafe-3.0.4")):  # fmt: skip
            status, body = image_run.http(f"{url}/{project}/")
            assert status == 200 and wheel.encode() in body, project
    with image_run.serve_index(wheels) as again:
        assert again == url, "the same wheels, the same URL: the build cache holds"
