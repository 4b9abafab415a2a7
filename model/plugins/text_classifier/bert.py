"""BERT-family encoders in plain torch, so that serving never imports transformers.

Importing transformers' model code costs 2-2.5 s here (it pulls in torch._dynamo,
torch.distributed.tensor and scipy), more than torch itself, and all of it lands on the
cold start. The encoders that classifiers are usually built on (BERT, MiniLM, RoBERTa,
XLM-R) are a few dozen lines of torch: this module rebuilds them from the saved
`backbone/config.json`, with the same parameter names, so the checkpoint's state dict
loads unchanged. Training still uses transformers; tests hold the two to the same
outputs. A config this module does not cover (`supports` says why) is served through
transformers instead.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from sagemaker_platform import bf16
from sagemaker_platform.bf16 import OneDNNLinear

# config.json's hidden_act -> the module computing what transformers' ACT2FN maps it to
# (modules, not functions: TorchScript compiles a module held by a module).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu_pytorch_tanh": functools.partial(nn.GELU, approximate="tanh"),
    # transformers' NewGELUActivation spells out the same tanh approximation.
    "gelu_new": functools.partial(nn.GELU, approximate="tanh"),
}
# model_type -> where position ids start: BERT counts from 0; RoBERTa's family from
# pad_token_id + 1, skipping padding (fairseq's convention).
FAMILIES = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "camembert": "roberta"}


def supports(config: dict[str, Any]) -> str | None:
    """None if `config` (a backbone's config.json) is an encoder this module computes
    exactly as transformers does, else the reason it is not."""
    checks = [
        (config.get("model_type") in FAMILIES, f"model_type {config.get('model_type')!r}"),
        (config.get("hidden_act") in ACTIVATIONS, f"hidden_act {config.get('hidden_act')!r}"),
        (
            config.get("position_embedding_type", "absolute") == "absolute",
            f"position_embedding_type {config.get('position_embedding_type')!r}",
        ),
        (not config.get("is_decoder", False), "a decoder"),
        (not config.get("add_cross_attention", False), "cross-attention"),
        (not config.get("chunk_size_feed_forward", 0), "chunked feed-forward"),
        ("embedding_size" not in config, "factorised embeddings"),
        (
            config.get("hidden_size", 0) % max(1, config.get("num_attention_heads", 0)) == 0,
            "hidden_size not a multiple of num_attention_heads",
        ),
    ]
    reasons = [reason for ok, reason in checks if not ok]
    return f"not a plain BERT-family encoder: {', '.join(reasons)}" if reasons else None


class Settings(NamedTuple):
    """The fields of config.json the encoder uses."""

    family: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        reason = supports(config)
        if reason:
            raise ValueError(reason)
        return cls(
            family=FAMILIES[config["model_type"]],
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            num_hidden_layers=config["num_hidden_layers"],
            num_attention_heads=config["num_attention_heads"],
            intermediate_size=config["intermediate_size"],
            hidden_act=config["hidden_act"],
            max_position_embeddings=config["max_position_embeddings"],
            type_vocab_size=config.get("type_vocab_size", 2),
            layer_norm_eps=config.get("layer_norm_eps", 1e-12),
            pad_token_id=config.get("pad_token_id") or 0,
        )


class Output(NamedTuple):
    last_hidden_state: torch.Tensor


# Parameters are built on the meta device (shapes, no memory, no random init: a tenth of
# a second for MiniLM, most of a second for BERT-base) and arrive with the checkpoint:
# `load_state_dict(..., assign=True)`, whose strict key check leaves none behind.
META = torch.device("meta")


def _embedding(rows: int, dim: int) -> nn.Embedding:
    return nn.Embedding(rows, dim, _weight=torch.empty(rows, dim, device=META))


class Embeddings(nn.Module):
    def __init__(self, s: Settings):
        super().__init__()
        self.family, self.pad_token_id = s.family, s.pad_token_id
        self.word_embeddings = _embedding(s.vocab_size, s.hidden_size)
        self.position_embeddings = _embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type_embeddings = _embedding(s.type_vocab_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps, device=META)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.family == "roberta":
            real = input_ids.ne(self.pad_token_id).int()
            positions = torch.cumsum(real, dim=1).type_as(real) * real + self.pad_token_id
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x + self.position_embeddings(positions.long()))


def _to(x: torch.Tensor, linear: nn.Module) -> torch.Tensor:
    """`x` in the dtype of `linear`'s weights: bf16 into a bf16 matrix multiply (see
    `bf16_matmuls`), a no-op when they already agree (or for int8's quantized layers,
    which take fp32 and whose `weight` is a method)."""
    weight = linear.weight
    return x.to(weight.dtype) if isinstance(weight, torch.Tensor) else x


CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")  # Linux: one folder per cache


def l2_bytes(caches: Path = CPU_CACHES, default: int = 1 << 20) -> int:
    """The size of one core's L2 cache (Linux's sysfs: `index*/level` 2, `size` such as
    "1024K"), or `default` where it cannot be read."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for index in sorted(caches.glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            size = (index / "size").read_text().strip()
            value = int(size[:-1]) * units[size[-1]] if size[-1:] in units else int(size)
        except (OSError, ValueError, KeyError):
            continue
        if value > 0:
            return value
    return default


# A packed text whose attention scores (heads x tokens x tokens, fp32) fit in this many
# bytes is attended with plain matmuls (`Packing.attend`): half of one core's L2. With a
# 1 MB L2 (AMD EPYC, AVX512-BF16) that is 104 tokens with 12 heads; the matmuls measured
# 0.82-0.88x the flash kernel's time up to 112 tokens (602 KB of scores), and from 0.97x
# to 2.4x at 128 tokens (786 KB). Half is a margin for CPUs measured on no other cache.
SMALL_SCORES = l2_bytes() // 2


def attend(qkv: torch.Tensor, lengths: list[int], heads: int, small: int) -> torch.Tensor:
    """Attention over packed [rows, 3 x d] queries, keys and values (`Packing`), each
    text on its own tokens: no padded key to mask, no grid to scatter into and gather
    from. Measured on MiniLM's layers with the benchmark's batches of 16 (61-102
    tokens), a quarter less time than the masked grid. The rounding's rows get zeros.

    A short text (scores of at most `small` bytes, `SMALL_SCORES`) is computed in fp32
    whatever the matmuls' precision: two batched matrix multiplies over its heads around
    an fp32 softmax. On the benchmark's texts that took 0.77x the time of bf16
    `scaled_dot_product_attention` (its flash kernel) on one thread, AVX512-BF16. A
    longer one goes to that kernel, which never holds its whole score matrix: past the
    core's cache (from 128 tokens here) the two matmuls took up to 3.3x its time. The
    result is stored in `qkv`'s dtype: rounded to bf16 where the matmuls are bf16, as the
    next matmul's input would be anyway. TorchScript compiles this (`PackedLayer`)."""
    d = qkv.shape[1] // 3
    width = d // heads
    scale = width**-0.5
    out = qkv.new_empty(qkv.shape[0], d)
    start = 0
    for length in lengths:
        if length == 0:
            continue
        part = qkv[start : start + length]
        if heads * length * length * 4 <= small:
            q, k, v = part.float().view(length, 3, heads, width).permute(1, 2, 0, 3).unbind(0)
            weights = torch.bmm(q * scale, k.transpose(1, 2)).softmax(-1)
            attended = torch.bmm(weights, v)  # [heads, length, width]
        else:
            q, k, v = part.view(1, length, 3, heads, width).permute(2, 0, 3, 1, 4).unbind(0)
            attended = F.scaled_dot_product_attention(q, k, v)[0]
        # One copy, heads interleaved into the text's rows (not a reshape, then a copy).
        out[start : start + length].view(length, heads, width).copy_(attended.transpose(0, 1))
        start += length
    out[start:].zero_()
    return out


class Packing(NamedTuple):
    """Where a padded batch's real tokens sit, for an encoder that skips padding: every
    layer works on the real tokens alone, packed into one [tokens, hidden] matrix, each
    text's tokens together in order; attention runs text by text on its own tokens
    (`attend`), without a mask. A padded token costs what a real one does on a CPU: on
    batches padded by 15% (the benchmark's texts in input order) this ran 7-25% faster
    in fp32 in alternating rounds, and bf16 gained more, with the same answers.

    `multiple` rounds the packed rows up (repeating the first real token; never
    scattered back): oneDNN builds a bf16 matmul kernel for each new row count, and
    rounding keeps them few."""

    rows: torch.Tensor  # flat indices of the real tokens in the batch x length grid
    batch: int
    length: int
    lengths: list[int]  # each text's real tokens, in batch order
    gather: torch.Tensor  # `rows`, then the first of them again up to the rounded count

    @classmethod
    def of(cls, attention_mask: torch.Tensor, multiple: int = 1) -> Packing:
        b, n = attention_mask.shape
        rows = attention_mask.reshape(-1).nonzero().squeeze(1)
        extra = -len(rows) % max(1, multiple)
        gather = torch.cat([rows, rows[:1].expand(extra)]) if extra and len(rows) else rows
        return cls(rows, b, n, attention_mask.sum(1).tolist(), gather)

    def attend(self, qkv: torch.Tensor, heads: int) -> torch.Tensor:
        return attend(qkv, self.lengths, heads, SMALL_SCORES)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, length, d] -> [rounded tokens, d]: the real tokens' rows."""
        return x.reshape(self.batch * self.length, x.shape[-1]).index_select(0, self.gather)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """[rounded tokens, d] -> [batch, length, d], zeros at the padded positions."""
        grid = x.new_zeros(self.batch * self.length, x.shape[-1])
        real = x[: len(self.rows)]
        return grid.index_copy_(0, self.rows, real).view(self.batch, self.length, -1)


class Residual(nn.Module):
    """transformers' BertSelfOutput / BertOutput: dense, then LayerNorm(x + residual).
    With bf16 matmuls the sum promotes to the residual's fp32 and the LayerNorm runs in
    fp32.

    Without autograd the sum is written into `residual` itself, which no one reads
    after this (it is the block's input): the same bits as a new tensor, and one 2 MB
    buffer fewer for the caches. On AMX (batch 16, 2 threads) the bf16 forward pass ran
    1.04x as fast, 1.02x on one thread (docs/results.md, "AMX")."""

    def __init__(self, d_in: int, d_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out, device=META)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps, device=META)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(_sum(residual, self.dense(_to(x, self.dense))))


def _sum(residual: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`residual + y`, written into `residual` where nothing can tell (`Residual`)."""
    if torch.is_grad_enabled() or torch.promote_types(y.dtype, residual.dtype) != residual.dtype:
        return y + residual
    return residual.add_(y)


class SelfAttention(nn.Module):
    """Query, key and value in one matrix multiply (loaded from the three separate
    weights transformers saves), then scaled dot-product attention."""

    def __init__(self, s: Settings):
        super().__init__()
        self.heads = s.num_attention_heads
        self.qkv = nn.Linear(s.hidden_size, 3 * s.hidden_size, device=META)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | Packing | None) -> torch.Tensor:
        qkv = self.qkv(_to(x, self.qkv))
        if isinstance(mask, Packing):
            return mask.attend(qkv, self.heads)
        b, n, d = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        q, k, v = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(b, n, d)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        names = [f"{prefix}{part}." for part in ("query", "key", "value")]
        for kind in ("weight", "bias"):
            if all(name + kind in state_dict for name in names):
                parts = [state_dict.pop(name + kind) for name in names]
                state_dict[f"{prefix}qkv.{kind}"] = torch.cat(parts)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Attention(nn.Module):
    def __init__(self, s: Settings):
        super().__init__()
        self.self = SelfAttention(s)
        self.output = Residual(s.hidden_size, s.hidden_size, s.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | Packing | None) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, s: Settings):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size, device=META)
        self.act = ACTIVATIONS[s.hidden_act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(_to(x, self.dense)))


class Layer(nn.Module):
    def __init__(self, s: Settings):
        super().__init__()
        self.attention = Attention(s)
        self.intermediate = Intermediate(s)
        self.output = Residual(s.intermediate_size, s.hidden_size, s.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | Packing | None) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class Layers(nn.Module):
    def __init__(self, s: Settings):
        super().__init__()
        self.layer = nn.ModuleList(Layer(s) for _ in range(s.num_hidden_layers))


class PackedLayer(nn.Module):
    """One `Layer` over packed tokens (`Packing`), the same computation in a form that
    TorchScript compiles (`BertEncoder.compile_packed`), holding the layer's own modules.

    TorchScript's interpreter runs the layer in one call without Python's lock. In
    Python every operation takes that lock and gives it back: a text's attention is a
    dozen small operations per layer, and the layer's modules a dozen calls more, so a
    pass spent about a sixth of its time there on one thread, and more where two threads
    computed parts of a batch at once, each waiting on the other's lock. MiniLM in bf16 on
    AMX, batches of 16: 1.11x as fast compiled in one call on two threads, 1.22x in two
    halves at once, the same answers (docs/results.md, "Compiled layers")."""

    def __init__(self, layer: Layer):
        super().__init__()
        attention = layer.attention
        self.qkv, self.heads, self.small = attention.self.qkv, attention.self.heads, SMALL_SCORES
        self.attention_out, self.attention_norm = attention.output.dense, attention.output.LayerNorm
        self.ffn_in, self.act = layer.intermediate.dense, layer.intermediate.act
        self.ffn_out, self.ffn_norm = layer.output.dense, layer.output.LayerNorm

    def forward(self, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        qkv = self.qkv(x.to(self.qkv.weight.dtype))
        attended = attend(qkv, lengths, self.heads, self.small)
        y = self.attention_out(attended.to(self.attention_out.weight.dtype))
        x = self.attention_norm(_sum(x, y))
        h = self.act(self.ffn_in(x.to(self.ffn_in.weight.dtype)))
        return self.ffn_norm(_sum(x, self.ffn_out(h.to(self.ffn_out.weight.dtype))))


class BertEncoder(nn.Module):
    """A BERT-family encoder in inference form (no dropout, no pooler): the same
    parameter names as transformers' BertModel / RobertaModel, the same outputs. Built
    empty, on the meta device: load its weights with `load_state_dict(sd, assign=True)`."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        s = Settings.from_config(config)
        self.config = s  # TextClassifier reads config.hidden_size
        self.embeddings = Embeddings(s)
        self.encoder = Layers(s)

    # Set by serving where padded tokens cost as much as real ones (see `Packing`). Off,
    # every layer computes the whole padded grid (its output at padded positions is
    # meaningless either way, and zeros when skipped). `pack_multiple` rounds the packed
    # token count up (`Packing`).
    skip_padding = False
    pack_multiple = 1

    def compile_packed(self) -> str | None:
        """Run the packed layers (`skip_padding`) through TorchScript from here on
        (`PackedLayer`), where their linears are fp32 `nn.Linear` or `OneDNNLinear`
        (fp32 and bf16 on a CPU); None if so, else why not (then Python runs them, as
        before; TorchScript is deprecated in torch 2.x and may go). Call it last:
        copying the encoder drops the compiled layers, which hold the original's
        modules, not the copy's."""
        linears = matmuls(self)
        if not all(
            isinstance(m, OneDNNLinear)
            or (type(m) is nn.Linear and m.weight.dtype == torch.float32)
            for m in linears
        ):
            return f"matmuls {sorted({type(m).__name__ for m in linears})} not fp32 or oneDNN"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's own
                compiled = [torch.jit.script(PackedLayer(layer)) for layer in self.encoder.layer]
        except Exception as exc:  # whatever TorchScript raises: Python's layers then
            return f"TorchScript failed: {type(exc).__name__}: {str(exc)[:200]}"
        self.__dict__["_packed"] = compiled  # not a submodule: no second state dict
        return None

    def _run_compiled(self, compiled: list, x: torch.Tensor, mask: Packing) -> torch.Tensor:
        """The compiled layers (`compile_packed`) over packed `x`, each layer's Python
        hooks run as if it were called (the platform hangs one before each:
        `Runtime.yield_cores_before`); what the hooks return is unused."""
        for layer, fast in zip(self.encoder.layer, compiled, strict=True):
            args = (x, mask)
            for hook in layer._forward_pre_hooks.values():
                hook(layer, args)
            x = fast(x, mask.lengths)
            for hook in layer._forward_hooks.values():
                hook(layer, args, x)
        return x

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if k != "_packed"}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Output:
        x = self.embeddings(input_ids)
        # Keys at padded positions are masked out; without padding, no mask at all. A
        # packed batch needs no mask (each text attends to its own tokens), and packs even
        # without padding, so that its row count is rounded as every other's.
        mask: torch.Tensor | Packing | None = None
        if self.skip_padding:
            mask = Packing.of(attention_mask, self.pack_multiple)
            x = mask.pack(x)
            compiled = self.__dict__.get("_packed")
            if compiled is not None and not torch.jit.is_tracing():
                return Output(mask.pad(self._run_compiled(compiled, x, mask)))
        elif not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return Output(mask.pad(x) if isinstance(mask, Packing) else x)


def matmuls(encoder: BertEncoder) -> list[nn.Module]:
    """The encoder's matrix multiplies: four per layer (query/key/value, attention output,
    the two feed-forward layers); they hold all but the embeddings' share of the work."""
    return [
        linear
        for layer in encoder.encoder.layer
        for linear in (
            layer.attention.self.qkv,
            layer.attention.output.dense,
            layer.intermediate.dense,
            layer.output.dense,
        )
    ]


# hidden_act -> oneDNN's post-op (and its algorithm) fused into the matmul before it.
ONEDNN_ACTIVATIONS = {
    "gelu": ("gelu", "none"),
    "relu": ("relu", ""),
    "silu": ("swish", ""),
    "swish": ("swish", ""),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "gelu_new": ("gelu", "tanh"),
}


def bf16_matmuls(net: nn.Module, encoder: BertEncoder) -> nn.Module:
    """A copy of `net` (an fp32 network around `encoder`) whose encoder computes its
    matrix multiplies in bf16 (bf16 weights and inputs, fp32 accumulation inside the
    kernel) and everything else in fp32: embeddings, the residual stream, LayerNorm,
    attention (packed: `Packing.attend`; over a padded grid, the softmax inside the fused
    kernel) and whatever `net` does after the encoder (pooling, the classifier head).
    Casting the whole network instead rounds the residual stream to 8 bits of mantissa
    at every layer, which flips near-tied argmaxes. Every parameter but the matmuls' is
    shared with `net`, not copied. On a CPU with oneDNN the matmuls run as
    `OneDNNLinear`, the feed-forward activation fused into the first.

    The platform's `bf16.bf16_matmuls` does this for any network; here the encoder's
    matmuls also keep their outputs in bf16 (the next operation, a residual add into
    fp32 or the attention's fp32 scores, converts them anyway) and fuse the activation."""
    fast = bf16.shared_copy(net, matmuls(encoder))
    fast_encoder = next(m for m in fast.modules() if isinstance(m, BertEncoder))
    for linear in matmuls(fast_encoder):
        linear.to(torch.bfloat16)
    if encoder.embeddings.word_embeddings.weight.is_cpu and bf16.onednn_bf16():
        fused = ONEDNN_ACTIVATIONS[
            fast_encoder.config.hidden_act
        ]  # every ACTIVATIONS key (test_bert)
        for layer in fast_encoder.encoder.layer:
            attention, ffn = layer.attention, layer.intermediate
            attention.self.qkv = OneDNNLinear(attention.self.qkv)
            attention.output.dense = OneDNNLinear(attention.output.dense)
            ffn.dense, ffn.act = OneDNNLinear(ffn.dense, *fused), nn.Identity()
            layer.output.dense = OneDNNLinear(layer.output.dense)
    return fast
