"""The loaded text classifier, ready for batches: tokenizer, network, device, precision.

Loads what training wrote to model/ through the same preprocessing code, with
torch.load(weights_only=True) and without importing Lightning. Nothing here knows
about HTTP: the platform's batching engine feeds it, through the plug-in's `predict`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from sagemaker_platform import bf16, logs
from sagemaker_platform.runtime import Runtime

from . import artifacts, bert, bucketing
from .text import TextEncoder, load_tokenizer

log = logging.getLogger("serve")

WARM_UP_TEXT = "warm-up " * 16


def pad_multiple(precision: str, device: str) -> int:
    """Batches pad to a multiple of this many tokens. GPUs' tensor cores want multiples
    of 8. A CPU encoder skips padded tokens (`skips_padding`): the grid's width then
    shapes attention alone, which builds no kernels per shape, and needs no step."""
    return 8 if device == "cuda" else 1


def skips_padding(precision: str, device: str) -> bool:
    """Whether the plain-torch encoder computes real tokens only (`bert.Packing`): on a
    CPU, where a padded token costs what a real one does, in every precision. On
    AVX512-BF16 bf16 packed ran at 1.2-1.3x bf16 over the padded grid in alternating
    rounds (docs/results.md, "Serving speed"). GPUs are unmeasured."""
    return device == "cpu"


def pack_multiple(precision: str, device: str) -> int:
    """Packed token counts round up to a multiple of this (`bert.Packing`). bf16 on a
    CPU runs on oneDNN, which builds a matmul kernel for each new row count (a new
    shape measured 10-15% slower than a cached one); steps of 32 bound them at
    max_batch_size x max_length / 32 per weight shape (128 for 32 x 128, within
    oneDNN's cache of 1024 kernels) for 1% more rows on the benchmark's batches. fp32
    and int8 run on MKL and fbgemm, which build nothing per shape."""
    return 32 if device == "cpu" and precision == "bf16" else 1


def compile_packed(nets: Sequence) -> str:
    """The plain-torch encoders of `nets` (None skipped) run their packed layers through
    TorchScript (`bert.PackedLayer`) where they skip padding: "yes", "no" where none
    packs (a GPU), else the reason one could not, for the `model loaded` line."""
    encoders = [net.backbone for net in nets if net is not None and net.backbone.skip_padding]
    reasons = [reason for encoder in encoders if (reason := encoder.compile_packed())]
    return reasons[0] if reasons else "yes" if encoders else "no"


class Model:
    """A trained classifier on one device, in one precision."""

    def __init__(
        self,
        model_dir: Path,
        runtime: Runtime | None = None,
        backbone: str = "auto",
    ):
        import torch

        started = time.perf_counter()
        self.runtime = runtime = runtime or Runtime()
        self.spec = artifacts.read_spec(model_dir)
        self.labels = self.spec.labels
        self.device = runtime.device
        self.precision = runtime.precision
        self.max_batch_size = runtime.max_batch_size
        self.cost: bucketing.CostCurve | None = None  # measured by warm_up
        tokenizer = load_tokenizer(model_dir / artifacts.TOKENIZER)
        artifacts.check_tokenizer(tokenizer, artifacts.read_backbone_config(model_dir))
        self.encoder = TextEncoder(tokenizer, self.spec.text)
        net = artifacts.load_network(model_dir, self.spec, backbone).to(self.device)
        if isinstance(net.backbone, bert.BertEncoder):
            net.backbone.skip_padding = skips_padding(self.precision, self.device)
        # bf16: bf16 matrix multiplies, fp32 everywhere else, and near-tied rows
        # recomputed by the fp32 network (`exact`), which shares all but the matmuls'
        # weights with the bf16 one: `bert.bf16_matmuls` for the plain-torch encoder, the
        # platform's `bf16.bf16_matmuls` for a backbone through transformers.
        self.exact = None
        if self.precision == "int8":
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
        elif self.precision == "bf16":
            self.exact = net.eval()
            if isinstance(net.backbone, bert.BertEncoder):
                net = bert.bf16_matmuls(net, net.backbone)
            else:
                net = bf16.bf16_matmuls(net)
        self.net = net.eval()
        self.pad_multiple = pad_multiple(self.precision, self.device)
        compiled = "no"
        if isinstance(self.net.backbone, bert.BertEncoder):
            self.net.backbone.pack_multiple = pack_multiple(self.precision, self.device)
            if runtime.torchscript:
                compiled = compile_packed([self.net, self.exact])
        self._torch = torch
        runtime.yield_cores_before(_layers(self.net))
        if self.exact is not None:
            runtime.yield_cores_before(_layers(self.exact))
        log.info(
            "model loaded %s",
            logs.kv(
                device=self.device,
                precision=self.precision,
                backbone="torch" if isinstance(net.backbone, bert.BertEncoder) else "transformers",
                compiled=compiled,
                threads=torch.get_num_threads(),
                classes=len(self.labels),
                max_length=self.spec.text.max_length,
                seconds=round(time.perf_counter() - started, 3),
            ),
        )

    @property
    def padded(self) -> bool:
        """Whether a pass costs its size times its longest text (padding computed), or
        only its real tokens, in any grouping (then `warm_up` measures no cost curve)."""
        return not getattr(getattr(self.net, "backbone", None), "skip_padding", False)

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
            logits = self.net(ids, mask).float()
            if self.exact is not None:
                logits = bf16.recheck(logits, self.exact, ids, mask)
        return torch.softmax(logits, dim=-1).cpu()

    def predict_proba(self, texts: Sequence[str], bucket: bool = True):
        """Class probabilities, one row per text, in input order (a float32 tensor).

        Texts are tokenized once, then run in forward passes of at most max_batch_size
        planned by `bucketing`: grouped by token count wherever the measured cost curve
        says that beats padding them together. `bucket=False` runs them in input order,
        max_batch_size at a time (the plain loop the benchmark compares against)."""
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
            return self._forward_parts(rows)
        out = torch.empty(len(rows), len(self.labels))
        for idx in passes:
            out[idx] = self._forward_parts([rows[i] for i in idx])
        return out

    def _forward_parts(self, rows: Sequence[Sequence[int]]):
        """`_forward(rows)`, split over the worker's threads where it computes alone on
        a CPU (`Runtime.in_parts`): parts of near-equal token counts, each padded to its
        own longest text."""
        return self._torch.cat(self.runtime.in_parts(self._forward, rows, cost=len))

    def warm_up(self) -> None:
        """One pass at full length, so a ready /ping promises a model that handles any
        text, then, where padding is computed, the timed passes of the bucketing cost
        curve, which also pay every one-off initialisation (oneDNN's kernels for each
        shape) before the first request.

        An encoder that skips padding needs no curve: a pass then costs its real tokens
        in any grouping, so full windows are the best plan (`bucketing.plan` without a
        curve), and its first batch was measured no slower than the next. Leaving the
        curve out saves most of the warm-up: about 1 s of cold start on a 2-core CPU."""
        started = time.perf_counter()
        filler = self.encoder.token_ids([WARM_UP_TEXT * 64])[0]
        # The platform runs this inside runtime.computing(), as every predict: workers
        # warming up together each take their share of the cores.
        self._forward([filler])
        if self.padded:
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
