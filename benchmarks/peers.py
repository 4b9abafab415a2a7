"""The CPU runtimes a serving engineer could pick instead, on the same trained network.

Each peer runs the network that serving loads (`inference.Model(...).net`, fp32),
exported once to ONNX, on the same token ids as the project's own model: ONNX Runtime
(fp32, and dynamic int8 from its quantizer) and OpenVINO (f32, and its bf16 inference
precision hint, which decides itself which operations stay in f32). A runtime that is not
installed is left out with the reason (they are benchmark dependencies,
requirements-dev.txt, not the image's).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path


def export_onnx(model, path: Path) -> Path:
    """`model.net` (fp32) as ONNX, batch and length dynamic. Traced on a padded batch,
    so the attention mask is part of the graph, and with the encoder computing the
    whole padded grid, as transformers' own export does (the gather of the real tokens
    would trace with the sample batch's shape fixed)."""
    import torch

    batch = model.encoder.pad(model.encoder.token_ids(["a short one", "a longer text " * 8]))
    backbone = model.net.backbone
    skip_padding, backbone.skip_padding = getattr(backbone, "skip_padding", False), False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about the unpadded branch
            torch.onnx.export(
                model.net,
                (batch["input_ids"], batch["attention_mask"]),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask")
                },
                opset_version=17,
                dynamo=False,
            )
    finally:
        backbone.skip_padding = skip_padding
    return path


def peers(model, work: Path, threads: int) -> tuple[dict[str, Callable], dict[str, str]]:
    """{name: predict(texts) -> class probabilities (tokenize + forward)} for each peer
    runtime, and {name: why it is skipped}."""
    import torch

    work.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, work / "model.onnx")
    runners: dict[str, Callable] = {}
    skipped: dict[str, str] = {}

    def wrap(run: Callable) -> Callable:
        def predict(texts):
            batch = model.encoder.pad(model.encoder.token_ids(texts))
            logits = run(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
            return torch.softmax(torch.as_tensor(logits).float(), dim=-1)

        return predict

    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        skipped["ONNX Runtime"] = f"not installed ({exc.name})"
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads block instead of spinning: a spinning pool takes the cores from
        # whichever runtime runs next in the alternating rounds.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        int8_path = work / "model-int8.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        for name, path in (
            ("ONNX Runtime fp32", onnx_path),
            ("ONNX Runtime dynamic int8", int8_path),
        ):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            runners[name] = wrap(
                lambda ids, mask, s=session: s.run(
                    None, {"input_ids": ids, "attention_mask": mask}
                )[0]
            )
    try:
        import openvino as ov
    except ImportError as exc:
        skipped["OpenVINO"] = f"not installed ({exc.name})"
    else:
        core = ov.Core()
        graph = core.read_model(str(onnx_path))
        for name, hint in (("OpenVINO f32", "f32"), ("OpenVINO bf16 hint", "bf16")):
            try:
                compiled = core.compile_model(
                    graph,
                    "CPU",
                    {
                        "INFERENCE_PRECISION_HINT": hint,
                        "INFERENCE_NUM_THREADS": threads,
                        "PERFORMANCE_HINT": "LATENCY",
                        "ENABLE_CPU_PINNING": False,  # see allow_spinning above
                    },
                )
            except RuntimeError as exc:  # e.g. bf16 under ONEDNN_MAX_CPU_ISA=AVX2
                reason = next((line for line in str(exc).splitlines() if "failed" in line), "")
                skipped[name] = f"failed to compile on this CPU: {reason or str(exc)[:200]}"
                continue
            runners[name] = wrap(lambda ids, mask, c=compiled: c([ids, mask])[0])
    return runners, skipped


def texts_per_second(predict: Callable, texts: list[str], batch: int = 16, n: int = 192) -> float:
    """Texts/s for tokenize + forward over `n` texts in chunks of `batch`, warm."""
    chunks = [texts[i : i + batch] for i in range(0, n, batch)]
    predict(chunks[0])
    start = time.perf_counter()
    for chunk in chunks:
        predict(chunk)
    return n / (time.perf_counter() - start)


def batch1_ms(predict: Callable, texts: list[str]) -> float:
    """Median latency of `predict` on one text at a time (tokenize + forward), in ms."""
    latencies = []
    for text in texts:
        t0 = time.perf_counter()
        predict([text])
        latencies.append(time.perf_counter() - t0)
    return statistics.median(latencies) * 1000


def argmaxes(predict: Callable, texts: list[str], batch: int = 16):
    """`predict`'s class for each of `texts`, `batch` at a time (a tensor)."""
    import torch

    return torch.cat([predict(texts[i : i + batch]) for i in range(0, len(texts), batch)]).argmax(
        -1
    )


def argmax_agreement(predict: Callable, texts: list[str], reference, batch: int = 16) -> float:
    """The share of `texts` whose predicted class is `reference`'s (fp32's)."""
    return float((argmaxes(predict, texts, batch) == reference).float().mean())
