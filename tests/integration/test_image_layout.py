"""The image's file layout, rebuilt in a temp dir from the Dockerfile, and its entry points.

What the Dockerfile copies (honouring .dockerignore) lands under <tmp>/<dest>; the job tree
lives under <tmp>/opt_ml, which SAGEMAKER_BASE_DIR points at (SageMaker mounts /opt/ml).
`train` and `serve` then run by bare name, from the Dockerfile's WORKDIR, in a clean
environment made of the Dockerfile's ENV over a base image's PATH, as `docker run IMAGE
train` would run them (tini, the ENTRYPOINT, only execs its arguments).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import dockerfile, helpers

ROOT = helpers.ROOT
MODEL_DIR = helpers.MODEL_DIR
# The base image's PATH (Ubuntu's default); the venv's bin stands in for its Python.
BASE_PATH = (
    f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)


def build_layout(root: Path) -> dict:
    """Copy what the Dockerfile's COPY instructions copy into `root`; return workdir and env."""
    instructions = dockerfile.load()
    for ins in dockerfile.of(instructions, "COPY"):
        src, dst = [w for w in ins.args.split() if not w.startswith("--")]
        source, target = ROOT / src, root / dst.lstrip("/")
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            continue
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and not dockerfile.ignored(rel):
                out = target / path.relative_to(source)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)  # keeps the executable bit, as COPY does
    image_env = dockerfile.final_env(instructions, {"PATH": BASE_PATH})
    # The image's absolute paths, moved under `root` (only /opt/program here).
    program = dockerfile.of(instructions, "WORKDIR")[-1].args
    image_env["PATH"] = image_env["PATH"].replace(program, str(root / program.lstrip("/")))
    return {"workdir": root / program.lstrip("/"), "env": image_env}


@pytest.fixture(scope="module")
def image(tmp_path_factory, tiny_backbone):
    root = tmp_path_factory.mktemp("image")
    layout = build_layout(root)
    base = root / "opt_ml"
    helpers.write_sample_job(
        base, {"backbone": str(tiny_backbone), "epochs": "1", "max_length": "32"}, 32, 16
    )
    home = root / "root"
    home.mkdir()
    env = {
        key: layout["env"][key]
        for key in ("PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LC_ALL", "LANG")
    }
    env.update({"SAGEMAKER_BASE_DIR": str(base), "HOME": str(home), "HF_HUB_OFFLINE": "1"})
    return {"root": root, "base": base, "env": env, "workdir": layout["workdir"]}


@pytest.fixture(scope="module")
def trained(image):
    """`train` run once, by bare name through PATH, like `docker run IMAGE train`."""
    return subprocess.run(
        ["train"],
        cwd=image["workdir"],
        env=image["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_layout_holds_the_code_but_no_caches(image):
    program = image["workdir"]
    assert (program / "train").is_file()
    assert (program / "sagemaker_platform" / "contract.py").is_file()
    assert not list(program.rglob("__pycache__"))


def test_train_by_bare_name_writes_the_model(image, trained):
    assert trained.returncode == 0, trained.stdout + trained.stderr
    model = image["base"] / "model"
    for name in ("model.ckpt", "labels.json", "preprocessing.json", "classifier.json"):
        assert (model / name).is_file(), name
    assert (model / "tokenizer").is_dir() and (model / "backbone" / "config.json").is_file()
    assert not list(image["workdir"].rglob("__pycache__")), "PYTHONDONTWRITEBYTECODE"


def test_serve_by_bare_name_answers_ping_and_invocations(image, trained, tmp_path):
    assert trained.returncode == 0, trained.stdout + trained.stderr
    port = helpers.free_port()
    env = {**image["env"], "SAGEMAKER_BIND_TO_PORT": str(port)}
    log = tmp_path / "serve.log"  # a file, not a pipe: a chatty server never blocks on it
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["serve"], cwd=image["workdir"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "no 200 from /ping within 120 s"
            time.sleep(0.5)
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"inputs": ["my package never arrived"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
            body = answer.read().decode()
        assert "label" in body, body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("serve did not exit within 30 s of SIGTERM") from None
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), log.read_text()
