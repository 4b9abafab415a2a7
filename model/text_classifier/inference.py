"""The loaded model, ready for batches: tokenizer, network, device and precision.

Loads what training wrote to model/ through the same preprocessing code, with
torch.load(weights_only=True) and without importing Lightning. Nothing here knows
about HTTP; `batching` feeds it and `service` turns its output into responses.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from . import artifacts, bert, bucketing, logs
from .cores import CoreShare
from .errors import UserError
from .text import TextEncoder, load_tokenizer

log = logging.getLogger("serve")

WARM_UP_TEXT = "warm-up " * 16


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("MODEL_SERVER_DEVICE=cuda but no GPU is visible")
    return requested


def cpu_has_bf16() -> bool:
    """Native bf16 matrix instructions (AVX512-BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(requested: str, device: str) -> str:
    """`auto`: bf16 weights where the hardware computes in bf16 (argmax agreement with
    fp32 measured at 100% by bench_serve), fp16 on older GPUs, else fp32. int8 is
    opt-in: dynamic quantization is fast but agrees less (see the README)."""
    import torch

    if requested == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if requested == "int8" and device != "cpu":
        raise UserError("MODEL_SERVER_PRECISION=int8 is CPU-only; use bf16 or fp16 on a GPU")
    if requested == "fp16" and device != "cuda":
        raise UserError("MODEL_SERVER_PRECISION=fp16 needs a GPU; use bf16 or int8 on CPU")
    return requested


def pad_multiple(precision: str, device: str) -> int:
    """Batches pad to a multiple of this many tokens. bf16 on a CPU runs on oneDNN,
    which builds kernels for each new input shape (a batch of 16 at every length from
    1 to max_length is a new shape); 16-token steps keep the shapes few and suit AMX
    tiles, for 12-19% more served throughput at concurrency 16 here. GPUs' tensor cores
    want multiples of 8. fp32 and int8 on a CPU pay for every padded token and need
    no step."""
    if device == "cuda":
        return 8
    return 16 if precision == "bf16" else 1


class Model:
    """A trained classifier on one device, in one precision."""

    def __init__(
        self,
        model_dir: Path,
        precision: str = "fp32",
        device: str = "cpu",
        threads: int = 0,
        max_batch_size: int = 32,
        backbone: str = "auto",
        share: CoreShare | None = None,
    ):
        import torch

        started = time.perf_counter()
        if threads:
            torch.set_num_threads(threads)
        self.spec = artifacts.read_spec(model_dir)
        self.labels = self.spec.labels
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.max_batch_size = max_batch_size
        self.cost: bucketing.CostCurve | None = None  # measured by warm_up
        self.encoder = TextEncoder(load_tokenizer(model_dir / artifacts.TOKENIZER), self.spec.text)
        net = artifacts.load_network(model_dir, self.spec, backbone)
        if self.precision == "int8":
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
        elif self.precision == "bf16":
            net = net.to(torch.bfloat16)  # cast once: autocast would re-cast every call
        self.net = net.to(self.device).eval()
        self.pad_multiple = pad_multiple(self.precision, self.device)
        self._torch = torch
        self._share = share  # CPU cores shared with the other workers (`cores`)
        if share is not None:
            for layer in _layers(self.net):
                layer.register_forward_pre_hook(self._yield_cores)
        log.info(
            "model loaded %s",
            logs.kv(
                device=self.device,
                precision=self.precision,
                backbone="torch" if isinstance(net.backbone, bert.BertEncoder) else "transformers",
                threads=torch.get_num_threads(),
                classes=len(self.labels),
                max_length=self.spec.text.max_length,
                seconds=round(time.perf_counter() - started, 3),
            ),
        )

    @contextlib.contextmanager
    def _computing(self):
        """Tell the other workers this one computes, and take its share of the cores:
        all of them when it computes alone."""
        if self._share is None:
            yield
            return
        with self._share.computing():
            # torch sets a thread's count on its first parallel op from the last count
            # set anywhere: let that happen first, or this thread's setting is lost.
            self._torch.get_num_threads()
            self._torch.set_num_threads(self._share.threads())
            yield

    def _yield_cores(self, module, args) -> None:
        """Before each encoder layer: if another worker started, drop to this worker's
        share now rather than compete for its cores until the batch ends."""
        threads = self._share.threads()
        if threads < self._torch.get_num_threads():
            self._torch.set_num_threads(threads)

    def _autocast(self):
        if self.precision != "fp16":
            return contextlib.nullcontext()
        # fp16 weights overflow in LayerNorm; autocast keeps those ops in fp32.
        return self._torch.autocast(self.device, dtype=self._torch.float16)

    def _forward(self, rows: Sequence[Sequence[int]]):
        torch = self._torch
        batch = self.encoder.pad(rows, self.pad_multiple)
        ids = batch["input_ids"].to(self.device, non_blocking=True)
        mask = batch["attention_mask"].to(self.device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            logits = self.net(ids, mask)
        return torch.softmax(logits.float(), dim=-1).cpu()

    def predict_proba(self, texts: Sequence[str], bucket: bool = True):
        """Class probabilities, one row per text, in input order (a float32 tensor).

        Texts are tokenized once, then run in forward passes of at most max_batch_size
        planned by `bucketing`: grouped by token count wherever the measured cost curve
        says that beats padding them together. `bucket=False` runs them in input order,
        max_batch_size at a time (the plain loop the benchmark compares against)."""
        with self._computing():
            return self._predict_proba(texts, bucket)

    def _predict_proba(self, texts: Sequence[str], bucket: bool):
        torch = self._torch
        rows = self.encoder.token_ids(texts)
        if bucket:
            widths = [self.encoder.width(len(r), self.pad_multiple) for r in rows]
            passes = bucketing.plan(widths, self.max_batch_size, self.cost)
        else:
            passes = [
                list(range(i, min(i + self.max_batch_size, len(rows))))
                for i in range(0, len(rows), self.max_batch_size)
            ]
        if len(passes) == 1:  # one pass holds every text: run them in input order
            return self._forward(rows)
        out = torch.empty(len(rows), len(self.labels))
        for idx in passes:
            out[idx] = self._forward([rows[i] for i in idx])
        return out

    def warm_up(self) -> None:
        """One pass at full length, so a ready /ping promises a model that handles any
        text, then the timed passes of the bucketing cost curve, which also pay every
        one-off initialisation before the first request."""
        started = time.perf_counter()
        filler = self.encoder.token_ids([WARM_UP_TEXT * 64])[0]
        with self._computing():  # workers warm up together: each on its share
            self._forward([filler])
            self.cost = bucketing.measure(
                lambda batch, length: self._forward([filler[:length]] * batch),
                self.max_batch_size,
                self.spec.text.max_length,
            )
        log.info(
            "warm-up %s",
            logs.kv(
                seconds=round(time.perf_counter() - started, 3),
                cost_curve=self.cost.describe() if self.cost else "none",
            ),
        )


def _layers(net) -> list:
    """The backbone's repeated blocks (BERT-style `encoder.layer`), else the backbone."""
    layers = getattr(getattr(net.backbone, "encoder", None), "layer", None)
    return list(layers) if layers is not None else [net.backbone]
