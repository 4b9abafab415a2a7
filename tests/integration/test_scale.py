"""Issue 7, for real on this machine: two `train` processes as two hosts on loopback (gloo),
a host that fails, and a spot interruption (SIGTERM) followed by a restart that resumes.

The two-host run and the SIGTERM/resume run are the platform's: they run once per
plug-in (`plugin_name`), each on a job sized so that an epoch has room for a signal
mid-way: 96 rows, or what the plug-in's sample.py asks for in TEST_SIZES (the tabular
MLP steps in a millisecond, so its epoch has more rows)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tests import helpers

HOSTS = ["algo-1", "algo-2"]
# 96 rows, batch 8: 12 steps per epoch on one process, 6 per rank on two.
SMALL = {"max_length": "32", "batch_size": "8"}


@dataclass(frozen=True)
class Sizes:
    """A job for the SIGTERM test: rows, batch size and the step-checkpoint interval."""

    rows: int
    batch: int
    every: int

    @property
    def steps(self) -> int:
        return self.rows // self.batch


MIN_SIGTERM_STEPS = 12  # an epoch with room for a checkpoint, then a signal before its end


def sigterm_sizes(plugin: str, written: int) -> Sizes:
    """The SIGTERM job's sizes from the training rows the plug-in's `write_data` really
    wrote (sample.py's TEST_SIZES asks for them): batches of 8, a step checkpoint a
    quarter into the epoch. A writer that wrote too few rows fails here, saying so."""
    asked = helpers.test_sizes(plugin)["sigterm_rows"]
    assert written >= MIN_SIGTERM_STEPS * 8, (
        f"{plugin}'s sample.py write_data wrote {written} training rows when asked for "
        f"{asked}; the SIGTERM test needs at least {MIN_SIGTERM_STEPS * 8} (an epoch of "
        f"{MIN_SIGTERM_STEPS} steps of 8): let it write them, or set "
        "TEST_SIZES = {'sigterm_rows': N} in sample.py"
    )
    steps = written // 8
    return Sizes(written, 8, steps // 4)


def small(plugin: str, tiny_backbone: Path, **extra: str) -> dict[str, str]:
    hp = {**helpers.test_hyperparameters(plugin, tiny_backbone), "batch_size": "8", **extra}
    if plugin == "text_classifier":
        hp["max_length"] = "32"
    return hp


def start_train(base: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(helpers.MODEL_DIR / "train")],
        env=helpers.subprocess_env(base, env),
        cwd=str(helpers.MODEL_DIR),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def cluster_jobs(
    root: Path,
    hyperparameters: dict[str, dict],
    timeout_s: int = 60,
    model: str = "text_classifier",
):
    """One /opt/ml tree per host, the same data in each, then both hosts started."""
    env = {
        "TRAINING_HOST_ADDRESSES": ",".join(f"{h}=127.0.0.1" for h in HOSTS),
        "TRAINING_MASTER_PORT": str(helpers.free_port()),
        "TRAINING_DIST_TIMEOUT": str(timeout_s),
    }
    procs = {}
    for host in HOSTS:
        base = root / host
        helpers.write_sample_job(base, hyperparameters[host], model=model)
        resource = {"current_host": host, "hosts": HOSTS, "network_interface_name": "lo"}
        (base / "input" / "config" / "resourceconfig.json").write_text(json.dumps(resource))
        procs[host] = start_train(base, env)
    return procs


def finish(procs: dict[str, subprocess.Popen], timeout: float) -> dict[str, tuple[int, str, float]]:
    """(exit status, output, seconds) per host; kills what is still running at the end."""
    started, results = time.monotonic(), {}
    try:
        for host, proc in procs.items():
            left = max(1.0, timeout - (time.monotonic() - started))
            out, _ = proc.communicate(timeout=left)
            results[host] = (proc.returncode, out, time.monotonic() - started)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def step_of(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def assert_serves(base: Path) -> None:
    """The model directory loads through its plug-in and answers the sample requests,
    one output per record."""
    from sagemaker_platform.artifacts import read_manifest
    from sagemaker_platform.registry import plugin_for
    from sagemaker_platform.runtime import Runtime

    plugin = plugin_for(base / "model")
    model = plugin.load(base / "model", Runtime())
    payloads = helpers.sample(read_manifest(base / "model")["module"]).PAYLOADS
    records = plugin.decode(model, payloads["application/json"], "application/json", {})
    assert len(plugin.predict(model, records)) == len(records) == 3


def test_two_hosts_train_one_model_on_loopback(tmp_path, tiny_backbone, plugin_name):
    hp = small(plugin_name, tiny_backbone, epochs="1")
    results = finish(cluster_jobs(tmp_path, {h: hp for h in HOSTS}, model=plugin_name), timeout=240)
    for rank, host in enumerate(HOSTS):
        code, out, _ = results[host]
        assert code == 0, f"{host}:\n{out[-4000:]}"
        assert f"cluster host={host} node_rank={rank} num_nodes=2 devices=1 world_size=2" in out
        assert "backend=gloo" in out

    first, second = tmp_path / "algo-1", tmp_path / "algo-2"
    # The DistributedSampler split the 96 rows: 6 steps of 8 per rank, not 12.
    assert step_of(first / "checkpoints" / "last.ckpt") == 6
    assert (first / "output" / "data" / "metrics.json").is_file()
    assert "done rank=1 steps=6" in results["algo-2"][1]
    # Rank 0 alone wrote: the model, the results and the checkpoints.
    for path in ("model", "output", "checkpoints"):
        assert not (second / path).exists(), f"algo-2 wrote {path}/"
    assert_serves(first)


def test_a_failing_host_fails_the_job_in_bounded_time(tmp_path, tiny_backbone):
    good = {"backbone": str(tiny_backbone), "epochs": "1", **SMALL}
    results = finish(
        cluster_jobs(tmp_path, {"algo-1": good, "algo-2": {**good, "epochs": "zero"}}, 15),
        timeout=120,
    )
    code, out, _ = results["algo-2"]
    assert code == 1 and "epochs='zero' is not valid" in out
    assert not (tmp_path / "algo-2" / "output" / "failure").exists()  # rank 1 does not write it

    code, out, seconds = results["algo-1"]
    assert code == 1, out[-4000:]
    assert seconds < 120
    reason = helpers.failure_reason(tmp_path / "algo-1")
    assert reason.startswith("ClusterError: algo-1 (rank 0 of 2 hosts) lost the other hosts")
    assert "timeout 15 s" in reason
    assert not (tmp_path / "algo-1" / "model").exists()


def read_until(proc: subprocess.Popen, pattern: str, lines: list[str], accept=None):
    """The first match of `pattern` in the output (that `accept` takes), or None."""
    for line in proc.stdout:
        lines.append(line)
        if (match := re.search(pattern, line)) and (accept is None or accept(match)):
            return match
    return None


def test_sigterm_saves_at_once_and_a_restart_resumes(tmp_path, tiny_backbone, plugin_name):
    """Sized by the plug-in (sample.py's TEST_SIZES): a fast model needs more rows for a
    signal to land in the middle of an epoch."""
    base = tmp_path / "opt_ml"
    rows = helpers.test_sizes(plugin_name)["sigterm_rows"]
    helpers.write_sample_job(base, {}, n_train=rows, model=plugin_name)
    written = len(helpers.channel_rows(plugin_name, base / "input" / "data" / "train"))
    size = sigterm_sizes(plugin_name, written)
    # Two epochs: the restart finishes the interrupted first and must then go on into a
    # second (a third proved nothing more, and was 2,000 more tabular steps).
    hp = small(plugin_name, tiny_backbone, epochs="2", checkpoint_every_n_steps=str(size.every))
    helpers.write_hyperparameters(base, hp)
    last = base / "checkpoints" / "last.ckpt"

    # 1. Interrupted mid-epoch 1, after the first step checkpoint.
    proc, lines = start_train(base), []
    try:
        seen = read_until(
            proc,
            r"epoch=1 step=(\d+) ",
            lines,
            lambda m: size.every < int(m.group(1)) < size.steps - 1,
        )
        assert seen, (
            f"no step line between step {size.every} and {size.steps - 1} of epoch 1: an "
            f"epoch of {size.rows} rows may end before the test can stop it; give the "
            "SIGTERM test more rows with TEST_SIZES = {'sigterm_rows': N} in sample.py\n"
            + "".join(lines)[-4000:]
        )
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = "".join(lines) + proc.communicate(timeout=60)[0]
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out[-4000:]
    assert stopped_in < 20, f"took {stopped_in:.1f} s to stop after SIGTERM"
    interrupted = re.search(r"interrupted signal=SIGTERM step=(\d+) .*checkpoint=(\S+)", out)
    assert interrupted, out[-4000:]
    step = int(interrupted.group(1))
    assert size.every < step < size.steps and interrupted.group(2) == str(last)
    assert f"checkpoint step={size.every} path={last}" in out  # the step schedule
    # Saved on SIGTERM (or by the schedule, had the step in progress been one of its).
    assert f"checkpoint step={step} path={last}" in out
    assert step_of(last) == step
    assert not (base / "output" / "failure").exists()
    assert not (base / "model").exists()

    # 2. The restart continues from that step and finishes the 2 epochs.
    result = helpers.run_entry("train", base, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert f"resume checkpoint={last} step={step} epoch=1" in out
    assert f"resume epoch=1 skip_batches={step} of={size.steps}" in out
    first_step = int(re.search(r"epoch=\d+ step=(\d+) ", out).group(1))
    assert step < first_step <= step + size.steps // 5 + 1, "the restart began from step 0"
    assert re.findall(r"INFO train: epoch=(\d) train_loss", out) == ["1", "2"]
    assert step_of(last) == 2 * size.steps, out[-3000:]
    assert_serves(base)

    # 3. A restart of the finished job trains nothing and writes the same model again.
    before = torch.load(base / "model" / "model.ckpt", weights_only=True)["state_dict"]
    for path in (base / "model").rglob("*"):
        if path.is_file():
            path.unlink()
    result = helpers.run_entry("train", base, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"resume checkpoint={last} step={2 * size.steps}" in result.stdout
    assert not re.search(r"epoch=\d+ step=\d+", result.stdout)
    after = torch.load(base / "model" / "model.ckpt", weights_only=True)["state_dict"]
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def listening(port: int) -> bool:
    """Whether a socket listens on `port`, read from /proc (no connection to disturb it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def test_sigterm_during_the_rendezvous_stops_at_once(tmp_path, tiny_backbone):
    """algo-1 of two hosts, and algo-2 never comes: SIGTERM while algo-1 waits for it ends
    the job at once, not after TRAINING_DIST_TIMEOUT, and leaves no failure file."""
    base, port = tmp_path / "algo-1", helpers.free_port()
    helpers.write_sample_job(base, {"backbone": str(tiny_backbone), **SMALL}, n_train=24, n_val=8)
    resource = {"current_host": "algo-1", "hosts": HOSTS, "network_interface_name": "lo"}
    (base / "input" / "config" / "resourceconfig.json").write_text(json.dumps(resource))
    env = {
        "TRAINING_HOST_ADDRESSES": ",".join(f"{h}=127.0.0.1" for h in HOSTS),
        "TRAINING_MASTER_PORT": str(port),
        "TRAINING_DIST_TIMEOUT": "600",
        # SIGTERM's default action skips the cleanup of train's scratch folder: keep it here
        "TMPDIR": str(tmp_path),
    }
    proc = start_train(base, env)
    try:
        deadline = time.monotonic() + 120
        while not listening(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening(port), "algo-1 never opened the rendezvous"
        time.sleep(1)
        assert proc.poll() is None, "algo-1 did not wait for algo-2"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop after SIGTERM"
    # SIGTERM's default action: the status tini (the image's PID 1) and a shell report as
    # 128 + 15 = 143, as for a SIGTERM during training.
    assert proc.returncode == -signal.SIGTERM, out[-4000:]
    assert "cluster host=algo-1 node_rank=0 num_nodes=2" in out
    assert "lost the other hosts" not in out
    for path in ("output/failure", "model", "checkpoints"):
        assert not (base / path).exists(), f"{path} written"
