"""`make demo` (local_test/demo.sh), the README's first command: the sample job trained,
served by nginx + gunicorn, and every sample request answered, on a newcomer's PATH (the
system's python3 first, without the project's packages)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests import helpers

nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


@pytest.mark.skipif(nginx is None, reason="nginx is not installed")
def test_the_demo_trains_serves_and_answers_every_sample_request(tmp_path):
    test_dir = tmp_path / "demo"
    env = {
        "PATH": f"{os.path.dirname(nginx)}:/usr/bin:/bin",  # no .venv/bin on it
        "HOME": str(tmp_path),
        "MODEL": "tabular",  # seconds to train
        "TEST_DIR": str(test_dir),
        "PORT": str(helpers.free_port()),
    }
    result = subprocess.run(
        ["bash", str(helpers.ROOT / "local_test" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    answers = re.findall(r"^--- (request-\d+\.\w+) \(([\w/+-]+)\)\n(.*)$", result.stdout, re.M)
    assert [name.split(".")[1] for name, _, _ in answers] == ["json", "jsonl", "csv"]
    for _, _, body in answers:
        predictions = json.loads(body)["predictions"]
        assert predictions and all(p["label"] in p["probabilities"] for p in predictions)
    assert "metrics of the trained model" in result.stdout
    assert (test_dir / "model" / "model.ckpt").is_file()
    assert "ERROR" not in result.stderr
