"""Issue 26: `make launch-demo` runs the launcher end to end against moto and cleans up.

The demo (scripts/launch_demo.py) is run as `make launch-demo` runs it: its own moto
process, one `python -m launcher` process per step. Each step must pass, `delete` must
leave nothing, moto must be stopped and the temporary folder gone; and every request
the steps sent (moto's recording, `--record`) must pass the API-model check the other
tests' requests go through (tests/aws_api.py), which cannot hook those processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests import aws_api, helpers

STEPS = ("train ok, tune ok, describe ok, deploy ok, invoke ok, transform ok, delete ok, "
         "delete --model ok, nothing left behind ok")  # fmt: skip


def test_make_launch_demo_runs_that_script():
    makefile = (helpers.ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlaunch-demo:", 1)[1].split("\n\n", 1)[0]
    assert "$(PY) scripts/launch_demo.py" in recipe


def test_the_demo_walks_every_step_and_leaves_nothing(tmp_path):
    record = tmp_path / "requests.json"
    result = subprocess.run(
        [sys.executable, "scripts/launch_demo.py", "--record", str(record)],
        cwd=helpers.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    assert out.rstrip().endswith(f"steps: {STEPS}")
    assert "Traceback" not in out + result.stderr
    # Nothing left behind: moto's process is gone, and so is the temporary folder.
    pid = int(re.search(r"moto server \(process (\d+)\) stopped", out)[1])
    folder = re.search(r"temporary folder (\S+) removed", out)[1]
    assert not os.path.exists(folder)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"moto's process {pid} still runs")
    # It says what it shows, what it cannot, and what each step sent.
    assert "=== what this run proves" in out and "=== what it cannot show" in out
    assert "-> sagemaker CreateEndpointConfig" in out and "moto's canned answer" in out

    requests = json.loads(record.read_text())
    operations = {r["operation"] for r in requests}
    assert operations >= {
        "CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateModel",
        "CreateEndpointConfig", "CreateEndpoint", "RegisterScalableTarget", "PutScalingPolicy",
        "InvokeEndpoint", "CreateTransformJob", "DeleteScalingPolicy",
        "DeregisterScalableTarget", "DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel",
    }  # fmt: skip
    checked = 0
    for request in requests:
        if request["service"] in ("sagemaker", "application-autoscaling", "logs"):
            problems = aws_api.request_problems(
                request["service"], request["operation"], request["params"]
            )
            assert problems == [], request
            checked += 1
    assert checked >= 20
