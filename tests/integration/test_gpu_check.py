"""benchmarks/gpu_check.py on this CPU, briefly, as a device run would use it: the tiny
backbone packed in fp16 (`--pack-backbone`, what a run carries to a GPU machine without
the MiniLM package), then the check on it with flask, gunicorn, gevent, openvino, pandas,
boto3 and sagemaker unimportable, as on a GPU machine that has only torch, lightning,
transformers and tokenizers. The CPU rows are measured, each CUDA row is skipped with
its reason, and the JSON holds the same table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, subprocess_env

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
ABSENT = ("flask", "gunicorn", "gevent", "openvino", "pandas", "boto3", "sagemaker")
# `python -c BLOCKER script args...`: each name in sys.modules as None, so that importing
# it raises ImportError and importlib.util.find_spec answers None (what libraries ask
# before an optional import), as where it is not installed; then the script as __main__.
BLOCKER = f"""
import importlib, runpy, sys
for name in {ABSENT!r}:
    sys.modules[name] = None
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    raise SystemExit(f"{{name}} is still importable")
print("blocked: " + " ".join({ABSENT!r}), flush=True)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
CUDA_ROWS = [
    ("training", "32-true"),
    ("training", "bf16-mixed"),
    ("serving", "fp32"),
    ("serving", "bf16"),
    ("serving", "fp16"),
]
TINY = ["--seconds", "0.2", "--warmup-steps", "1", "--texts", "16"]


def run(args: list[str], tmp_path, blocked: bool = False) -> subprocess.CompletedProcess:
    prefix = ["-c", BLOCKER] if blocked else []
    return subprocess.run(
        [sys.executable, *prefix, str(SCRIPT), *args],
        env=subprocess_env(tmp_path, {"OMP_NUM_THREADS": "1"}),  # a busy machine: no spinning
        cwd=str(tmp_path),  # the script finds model/ itself
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def checked(tiny_backbone, tmp_path_factory):
    """The packed backbone, and the CPU run on it with those modules absent: its
    process, its table rows ({(check, device, precision): cells}) and its JSON."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    packed = tmp / "packed"
    done = run(["--backbone", str(tiny_backbone), "--pack-backbone", str(packed)], tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp / "out" / "gpu_check.json"
    done = run(["--backbone", str(packed), "--json", str(out), *TINY], tmp, blocked=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 9 and cells[0] not in ("check", "---"):
            rows[cells[0], cells[1], cells[2].split(" ")[0]] = cells  # less "(auto)"
    return packed, done, rows, json.loads(out.read_text())


def test_pack_halves_the_weights(checked, tiny_backbone):
    packed = checked[0]
    name = "model.safetensors"
    assert (packed / name).stat().st_size < 0.6 * (tiny_backbone / name).stat().st_size
    assert (packed / "tokenizer.json").is_file() and (packed / "config.json").is_file()


def test_runs_with_only_torch_lightning_transformers_and_tokenizers(checked):
    done = checked[1]
    assert done.stdout.startswith("blocked: flask gunicorn gevent openvino pandas"), done.stdout
    assert "FAILED" not in done.stdout, done.stdout


def test_table_measures_the_cpu_rows_and_skips_each_cuda_row(checked):
    rows = checked[2]
    train = rows["training", "cpu", "32-true"]
    assert train[3].endswith(" steps/s") and float(train[3].split()[0]) > 0
    assert train[4] == "1.00x"
    serve = [cells for key, cells in rows.items() if key[:2] == ("serving", "cpu")]
    assert len(serve) == 1 and serve[0][2].startswith("fp32"), rows
    assert serve[0][3].endswith(" texts/s") and serve[0][5] == "1.000"
    assert serve[0][6].endswith(" ms") and serve[0][7] == ""  # no GPU memory on a CPU
    for check, precision in CUDA_ROWS:
        note = rows[check, "cuda", precision][8]
        assert note == f"no CUDA device: {check} in {precision} on CUDA skipped"
    workers = rows["workers", "cpu", ""]
    assert workers[3].endswith(" workers")
    assert "0 GPU(s) found (torch sees 0)" in workers[8] and "device=cpu" in workers[8]
    assert len(rows) == 2 + len(CUDA_ROWS) + 1


def test_json_holds_the_same_table(checked):
    rows, report = checked[2], checked[3]
    assert [(r["check"], r["device"]) for r in report["rows"]] == [k[:2] for k in rows]
    by_status = {}
    for r in report["rows"]:
        by_status.setdefault(r["status"], []).append((r["check"], r["device"], r["precision"]))
    assert sorted(by_status["skipped"]) == sorted((c, "cuda", p) for c, p in CUDA_ROWS)
    assert "failed" not in by_status
    serving = next(r for r in report["rows"] if r["check"] == "serving" and r["device"] == "cpu")
    assert serving["rate"] > 0 and serving["agreement"] == 1.0 and serving["batch1_p50_ms"] > 0
    assert report["environment"]["torch"] and report["environment"]["gpu"] is None


def test_device_cuda_without_a_gpu_is_refused(tiny_backbone, tmp_path):
    done = run(["--device", "cuda", "--backbone", str(tiny_backbone)], tmp_path)
    assert done.returncode != 0
    assert "--device cuda: torch" in done.stderr and "sees no CUDA device" in done.stderr


def test_make_gpu_check_runs_the_script_without_the_venv_setup():
    """A GPU machine may have no .venv: the target must not depend on `make setup`."""
    makefile = (ROOT / "Makefile").read_text()
    target, recipe = makefile.split("\ngpu-check:", 1)[1].split("\n\n", 1)[0].split("\n", 1)
    assert "$(STAMP)" not in target.split("##")[0]
    assert "benchmarks/gpu_check.py $(ARGS)" in recipe
