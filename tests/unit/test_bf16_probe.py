"""`runtime.cpu_bf16_speedup`: `auto` picks bf16 on a CPU only where a measured bf16
matrix multiply beats fp32's by `BF16_MIN_SPEEDUP`, not wherever the flags name bf16
instructions. The measurement itself is forced here; tests/integration/
test_bf16_probe_onednn.py runs it on oneDNN capped to lower instruction sets."""

from __future__ import annotations

import logging

import pytest

from sagemaker_platform import bf16, runtime


@pytest.fixture(autouse=True)
def fresh_probe():
    runtime.cpu_bf16_speedup.cache_clear()
    yield
    runtime.cpu_bf16_speedup.cache_clear()  # the next test measures this CPU afresh


@pytest.fixture
def flags(tmp_path, monkeypatch):
    """`flags("...")`: the CPU's flags, with oneDNN computing bf16 (on any CPU running
    the test); only the measurement then decides."""

    def write(text: str) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {text}\n\n")
        monkeypatch.setattr(runtime, "CPUINFO", cpuinfo)
        monkeypatch.setattr(bf16, "onednn_bf16", lambda: True)

    return write


def probe_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("cpu bf16 probe")]


@pytest.mark.parametrize(
    "speedup,chosen",
    [
        (4.6, "bf16"),  # AMX
        (1.2, "bf16"),  # BF16_MIN_SPEEDUP itself
        (1.19, "fp32"),
        (0.64, "fp32"),  # AVX512-BF16 instructions on a Xeon with AMX left off
    ],
)
def test_the_measured_speedup_decides(flags, monkeypatch, caplog, speedup, chosen):
    flags("fpu avx2 avx512f avx512_bf16")
    found = {"speedup": speedup, "fp32_gflops": 178}
    monkeypatch.setattr(runtime, "_time_bf16", lambda: dict(found))
    with caplog.at_level(logging.INFO):
        assert runtime.resolve_precision("auto", "cpu") == chosen
    (line,) = probe_lines(caplog)
    pays = "yes" if chosen == "bf16" else "no"
    assert line == f"cpu bf16 probe speedup={speedup:.2f} bf16_pays={pays} fp32_gflops=178"


def test_no_bf16_flags_means_fp32_without_measuring(flags, monkeypatch, caplog):
    flags("fpu sse2 avx2 fma")

    def measured():
        raise AssertionError("measured on a CPU without bf16 instructions")

    monkeypatch.setattr(runtime, "_time_bf16", measured)
    with caplog.at_level(logging.INFO):
        assert runtime.resolve_precision("auto", "cpu") == "fp32"
    (line,) = probe_lines(caplog)
    assert "bf16_pays=no" in line and "no AVX512-BF16 or AMX in the CPU flags" in line


def test_it_measures_once_per_process(flags, monkeypatch, caplog):
    flags("fpu avx2 avx512f amx_bf16 amx_tile")
    calls = []
    monkeypatch.setattr(runtime, "_time_bf16", lambda: calls.append(1) or {"speedup": 5.0})
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert runtime.cpu_bf16_pays() is True
    assert len(calls) == 1 and len(probe_lines(caplog)) == 1


def test_explicit_precisions_do_not_measure(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: pytest.fail("measured"))
    assert runtime.resolve_precision("bf16", "cpu") == "bf16"
    assert runtime.resolve_precision("fp32", "cpu") == "fp32"


def test_the_measurement_times_both_precisions_on_one_thread_and_gives_the_rest_back(
    monkeypatch,
):
    """One thread: serving's workers probe at the same moment, and two probes on two
    threads each, sharing two cores, measured AMX below the threshold."""
    import torch
    from torch.nn import functional as F

    seen, linear = [], F.linear

    def counted(*args):
        seen.append(torch.get_num_threads())
        return linear(*args)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(F, "linear", counted)
    try:
        found = runtime._time_bf16()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    assert found["speedup"] > 0 and found["fp32_gflops"] > 0 and found["bf16_gflops"] > 0
    ratio = found["bf16_gflops"] / found["fp32_gflops"]
    assert found["speedup"] == pytest.approx(ratio, rel=0.1)  # GFLOP/s are rounded
