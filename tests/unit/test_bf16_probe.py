"""`cpu_bf16.cpu_bf16_speedup`: `auto` picks bf16 on a CPU only where a measured bf16
matrix multiply beats fp32's by `BF16_MIN_SPEEDUP`, not wherever the flags name bf16
instructions. The measurement itself is forced here; tests/integration/
test_bf16_probe_onednn.py runs it on oneDNN capped to lower instruction sets."""

from __future__ import annotations

import logging
import time

import pytest

from sagemaker_platform import bf16, cpu_bf16, runtime


@pytest.fixture(autouse=True)
def fresh_probe():
    cpu_bf16.cpu_bf16_speedup.cache_clear()
    yield
    cpu_bf16.cpu_bf16_speedup.cache_clear()  # the next test measures this CPU afresh


@pytest.fixture
def flags(tmp_path, monkeypatch):
    """`flags("...")`: the CPU's flags, with oneDNN computing bf16 (on any CPU running
    the test); only the measurement then decides."""

    def write(text: str) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {text}\n\n")
        monkeypatch.setattr(cpu_bf16, "CPUINFO", cpuinfo)
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
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: dict(found))
    with caplog.at_level(logging.INFO):
        assert runtime.resolve_precision("auto", "cpu") == chosen
    (line,) = probe_lines(caplog)
    pays = "yes" if chosen == "bf16" else "no"
    assert line == f"cpu bf16 probe speedup={speedup:.2f} bf16_pays={pays} fp32_gflops=178"


def test_no_bf16_flags_means_fp32_without_measuring(flags, monkeypatch, caplog):
    flags("fpu sse2 avx2 fma")

    def measured():
        raise AssertionError("measured on a CPU without bf16 instructions")

    monkeypatch.setattr(cpu_bf16, "_time_bf16", measured)
    with caplog.at_level(logging.INFO):
        assert runtime.resolve_precision("auto", "cpu") == "fp32"
    (line,) = probe_lines(caplog)
    assert "bf16_pays=no" in line and "no AVX512-BF16 or AMX in the CPU flags" in line


def test_it_measures_once_per_process(flags, monkeypatch, caplog):
    flags("fpu avx2 avx512f amx_bf16 amx_tile")
    calls = []
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: calls.append(1) or {"speedup": 5.0})
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert cpu_bf16.cpu_bf16_pays() is True
    assert len(calls) == 1 and len(probe_lines(caplog)) == 1


def test_explicit_precisions_do_not_measure(monkeypatch):
    monkeypatch.setattr(cpu_bf16, "cpu_bf16_speedup", lambda: pytest.fail("measured"))
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
        found = cpu_bf16._time_bf16()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    assert found["speedup"] > 0 and found["fp32_gflops"] > 0 and found["bf16_gflops"] > 0
    ratio = found["bf16_gflops"] / found["fp32_gflops"]
    assert found["speedup"] == pytest.approx(ratio, rel=0.1)  # GFLOP/s are rounded


@pytest.fixture
def shared_file(tmp_path, monkeypatch, flags):
    """A server's probe file (`PROBE_FILE_ENV`), on a CPU whose flags name AMX."""
    flags("fpu avx2 avx512f amx_bf16 amx_tile")
    path = tmp_path / "serve-x" / "cpu-bf16-probe"
    path.parent.mkdir()
    monkeypatch.setenv(cpu_bf16.PROBE_FILE_ENV, str(path))
    return path


def test_a_servers_workers_share_one_measurement(shared_file, monkeypatch, caplog):
    """The first worker measures and writes its figure; the next reads it, measuring
    nothing, so both compute in the same precision whatever a second measurement says."""
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: {"speedup": 1.21, "fp32_gflops": 90})
    with caplog.at_level(logging.INFO):
        assert cpu_bf16.cpu_bf16_pays() is True
    assert float(shared_file.read_text()) == 1.21
    cpu_bf16.cpu_bf16_speedup.cache_clear()  # the next worker: a fresh process
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: {"speedup": 1.19})  # would say no
    with caplog.at_level(logging.INFO):
        assert cpu_bf16.cpu_bf16_pays() is True
    assert probe_lines(caplog) == [
        "cpu bf16 probe speedup=1.21 bf16_pays=yes fp32_gflops=90",
        "cpu bf16 probe speedup=1.21 bf16_pays=yes shared=yes",
    ]
    assert shared_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("text", ["", "fast", "nan", "inf", "-1.0", "1e9", "1.5\x00"])
def test_a_probe_file_without_a_figure_is_measured_anew(shared_file, monkeypatch, text):
    shared_file.write_text(text)
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: {"speedup": 4.5})
    assert cpu_bf16.cpu_bf16_speedup() == 4.5
    assert shared_file.read_text() == "4.5"


def test_a_link_in_place_of_the_probe_file_is_not_followed(shared_file, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("9.0")
    shared_file.symlink_to(elsewhere)
    monkeypatch.setattr(cpu_bf16, "_time_bf16", lambda: {"speedup": 0.6})
    assert cpu_bf16.cpu_bf16_speedup() == 0.6  # its own measurement, not the link's 9.0
    assert elsewhere.read_text() == "9.0"


def test_workers_probing_at_once_measure_once(shared_file, tmp_path, monkeypatch):
    """Workers start together: one measures while the others wait on the file's lock."""
    import multiprocessing

    log = tmp_path / "measured"

    def slow() -> dict:
        with open(log, "a") as f:
            f.write("x")
        time.sleep(0.3)  # long enough for the others to reach the lock
        return {"speedup": 3.0}

    monkeypatch.setattr(cpu_bf16, "_time_bf16", slow)
    ctx = multiprocessing.get_context("fork")  # the children keep this test's patches
    figures = ctx.Queue()
    workers = [
        ctx.Process(target=lambda: figures.put(cpu_bf16.cpu_bf16_speedup())) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert [figures.get(timeout=5) for _ in workers] == [3.0, 3.0, 3.0]
    assert log.read_text() == "x"
