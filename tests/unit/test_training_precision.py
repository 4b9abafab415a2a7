"""The `precision` hyperparameter: what `auto` chooses on each kind of hardware, and what
an explicit precision does where the hardware lacks it. The hardware is forced (CUDA
and the CPU's bf16 units), so every branch runs on any machine."""

from __future__ import annotations

import logging

import pytest
import torch

from sagemaker_platform import cpu_bf16 as probe
from sagemaker_platform import precision
from sagemaker_platform.errors import UserError


@pytest.fixture
def hardware(monkeypatch):
    """`hardware(gpu=..., gpu_bf16=..., cpu_bf16=...)` forces what the probes answer."""

    def force(gpu: bool = False, gpu_bf16: bool = False, cpu_bf16: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: gpu_bf16)
        monkeypatch.setattr(probe, "cpu_bf16_pays", lambda: cpu_bf16)

    return force


@pytest.mark.parametrize(
    "hw,bf16_on_cpu,expected",
    [
        # AVX512-BF16 or AMX: the text classifier measured faster there with the same F1
        ({"cpu_bf16": True}, True, "bf16-mixed"),
        ({"cpu_bf16": True}, False, "32-true"),  # a small MLP or CNN: no gain, fp32
        ({"cpu_bf16": False}, True, "32-true"),  # AVX2, or bf16 units measured slower
        ({"gpu": True, "gpu_bf16": True}, False, "bf16-mixed"),  # every plug-in on a GPU
        ({"gpu": True, "gpu_bf16": False, "cpu_bf16": True}, True, "32-true"),  # GPU trains
    ],
)
def test_auto_chooses_bf16_where_the_hardware_computes_in_it(hardware, hw, bf16_on_cpu, expected):
    hardware(**hw)
    assert precision.resolve("auto", bf16_on_cpu) == expected


def test_the_text_classifier_alone_trains_in_bf16_on_a_bf16_cpu():
    # Measured (bench_train.py --compare-precision): MiniLM 1.3x per CPU second; the
    # tabular MLP 0.70x, the image CNN 0.98-1.04x.
    from sagemaker_platform import registry

    chosen = {name: registry.load(name).bf16_on_cpu for name in registry.available()}
    assert chosen == {"text_classifier": True, "tabular": False, "image_classifier": False}


@pytest.mark.parametrize("cpu_bf16", [True, False])
def test_32_is_lightnings_32_true_everywhere(hardware, cpu_bf16):
    hardware(cpu_bf16=cpu_bf16)
    assert precision.resolve("32") == "32-true"
    assert precision.resolve("32-true") == "32-true"


@pytest.mark.parametrize("requested", ["bf16-mixed", "bf16-true"])
def test_bf16_on_a_cpu_without_bf16_units_trains_with_a_warning(hardware, caplog, requested):
    hardware(cpu_bf16=False)
    with caplog.at_level(logging.WARNING, logger="train"):
        assert precision.resolve(requested) == requested
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"precision precision={requested} ")
    assert "no bf16 units" in line and "\n" not in line


def test_bf16_on_a_cpu_with_bf16_units_or_a_gpu_warns_of_nothing(hardware, caplog):
    with caplog.at_level(logging.WARNING, logger="train"):
        hardware(cpu_bf16=True)
        assert precision.resolve("bf16-mixed") == "bf16-mixed"
        assert precision.resolve("bf16-true", bf16_on_cpu=True) == "bf16-true"
        hardware(gpu=True, gpu_bf16=True)
        assert precision.resolve("bf16-mixed") == "bf16-mixed"
    assert not caplog.records


def test_fp16_autocast_is_refused_on_a_cpu_in_one_line(hardware):
    # Lightning would run bf16-mixed instead, while the log said 16-mixed.
    hardware(cpu_bf16=True)
    with pytest.raises(UserError) as err:
        precision.resolve("16-mixed")
    assert "precision=16-mixed needs a GPU" in str(err.value) and "\n" not in str(err.value)
    hardware(gpu=True)
    assert precision.resolve("16-mixed") == "16-mixed"


def test_bf16_mixed_trains_under_autocast_and_validates_in_fp32():
    # Validation in fp32: the epoch figures that pick the best checkpoint are those of
    # its fp32 evaluation in metrics.json (the tiny model's differed by a row in bf16).
    import lightning as L

    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        **precision.trainer_kwargs("bf16-mixed"),
    )
    assert trainer.precision == "bf16-mixed"
    plugin = trainer.precision_plugin
    with plugin.train_step_context():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with plugin.val_step_context():
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("name", ["32-true", "bf16-true"])
def test_other_precisions_are_lightnings_own(name):
    assert precision.trainer_kwargs(name) == {"precision": name}


@pytest.mark.parametrize(
    "flags,bf16",
    [
        ("fpu sse2 avx2 fma", False),
        ("fpu avx2 avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4, Cooper Lake
        ("fpu avx2 avx512f amx_bf16 amx_tile amx_int8", True),  # Intel Sapphire Rapids
        ("fpu avx2 avx512f avx512_fp16 amx_tile", False),
    ],
)
def test_the_cpu_flags_check_reads_the_bf16_flags(tmp_path, monkeypatch, flags, bf16):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n")
    monkeypatch.setattr(probe, "CPUINFO", cpuinfo)
    assert probe._bf16_flags() is bf16


def test_the_cpu_flags_check_says_no_where_there_is_no_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "CPUINFO", tmp_path / "absent")  # macOS, a locked-down box
    assert probe._bf16_flags() is False
