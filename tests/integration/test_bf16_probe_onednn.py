"""`precision=auto` on a CPU whose flags name bf16 instructions that do not pay, measured
for real: oneDNN capped (`ONEDNN_MAX_CPU_ISA`) below what this CPU has, as a kernel or
hypervisor that leaves AMX off caps it, in a fresh interpreter each (the probe runs once
per process)."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import MODEL_DIR

CODE = """
import logging, pathlib, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
from sagemaker_platform import cpu_bf16, runtime
if len(sys.argv) > 2:
    cpu_bf16.CPUINFO = pathlib.Path(sys.argv[2])
print("chosen", runtime.resolve_precision("auto", "cpu"))
print("again", runtime.resolve_precision("auto", "cpu"))
"""


def auto(isa: str, *cpuinfo: str) -> tuple[str, str]:
    """`auto`'s CPU precision and the probe's log line, in an interpreter whose oneDNN is
    capped at `isa`."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(MODEL_DIR), *cpuinfo],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    (probe,) = [line for line in lines if line.startswith("cpu bf16 probe")]  # once
    (chosen,) = [line.split()[1] for line in lines if line.startswith("chosen")]
    return chosen, probe


def test_bf16_flags_without_onednn_bf16_keep_fp32(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n")
    chosen, probe = auto("AVX2", str(cpuinfo))
    assert chosen == "fp32"
    assert "bf16_pays=no" in probe and "oneDNN computes no bf16" in probe


AMX = torch.cpu._is_amx_tile_supported()


@pytest.mark.skipif(not AMX, reason="needs a CPU with AMX: its oneDNN is capped below it")
def test_amx_pays_and_avx512_bf16_on_the_same_xeon_does_not():
    # Measured on a Sapphire Rapids-class Xeon: AMX 4.0-5.2x fp32; capped to
    # AVX512-BF16's instructions 0.59-0.62x, where the MiniLM default in bf16 ran at
    # 0.67x fp32's speed (docs/results.md, "Choosing bf16 by measuring").
    chosen, probe = auto("ALL")
    assert chosen == "bf16" and "bf16_pays=yes" in probe
    chosen, probe = auto("AVX512_CORE_BF16")
    assert chosen == "fp32" and "bf16_pays=no" in probe
    speedup = float(probe.split("speedup=")[1].split()[0])
    assert 0 < speedup < 1.2


@pytest.mark.skipif(not AMX, reason="needs a CPU with AMX")
def test_workers_probing_at_once_still_find_amx():
    # Serving's workers start together. Two probes on two threads each, sharing two
    # cores, measured AMX at 1.13x in one of three pairs (fp32 chosen on AMX); on one
    # thread each, 4.0-5.2x.
    for _ in range(2):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            found = list(pool.map(auto, ["ALL", "ALL"]))
        assert [chosen for chosen, _ in found] == ["bf16", "bf16"], found
