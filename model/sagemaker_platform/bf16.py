"""bf16 serving for any torch module: its matrix multiplies in bf16, everything else in
fp32, and the rows whose answer that could flip recomputed in fp32.

bf16 speeds up matrix multiplies on a CPU with bf16 units (AVX512-BF16, AMX) and on a
GPU. Rounding the rest of a network as well (its residual stream, LayerNorm, softmax)
gains little more and moves its outputs further: on a barely trained MiniLM classifier,
casting the whole network moved the difference of two logits by up to 7.4% of the row's
largest |logit|, against 4.6% for bf16 matmuls alone (docs/results.md, "bf16 for any
network"). So a plug-in whose `load` builds a torch module serves it in bf16 with

    fast = bf16.bf16_matmuls(net)            # a copy: net itself stays fp32
    logits = bf16.recheck(fast(x).float(), net, x)   # a classifier's near ties in fp32

`bf16_matmuls` leaves every module but `nn.Linear` alone: a convolution, or a matmul a
module spells with `@` or `torch.bmm`, stays fp32. The text classifier's own encoder
goes further on the same parts (`plugins/text_classifier/bert.py`: outputs kept in bf16
where the next operation promotes them anyway, the activation fused into its matmul).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

# A row whose two highest logits are closer than this fraction of its largest |logit| is
# recomputed in fp32 (`recheck`). On the benchmark's 500 held-out texts (`make
# bench-serve`: its "bf16 vs fp32 logits" line) the MiniLM classifier's bf16 matmuls
# moved the difference of two logits by 2.7% of that scale at worst for a trained model
# (p99 1.6%) and 4.0% for one barely trained (p99 2.9%): not a bound, so a flip outside
# the margin stays possible. Of the argmaxes bf16 flipped there, none was outside 2%,
# which sends 1.2% and 4.0% of rows to fp32; agreement with fp32 stays 1.000. A wider
# margin costs about 1.75x a row's bf16 time for each row it adds. For a network of
# your own, measure the same on held-out data (`compare`).
NEAR_TIE = 0.02


def onednn_bf16() -> bool:
    """oneDNN's own answer to whether it runs bf16 matmuls on this CPU (AVX512 or AMX).
    Elsewhere (AVX2) it cannot build the kernel, and bf16 linears stay torch's: slow but
    right, for a user who asks for bf16 where `auto` would not choose it."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class OneDNNLinear(nn.Module):
    """A bf16 linear layer run by oneDNN's matmul directly, its bias and activation
    fused into the kernel, its weight reordered once into oneDNN's blocked layout (the
    ops torch.compile's CPU backend emits with frozen weights). Measured alone on
    MiniLM's first feed-forward layer, half the time of `addmm` (which copies the bias
    into the output first) followed by a separate GELU pass; the reorder saved another
    3-8% per matmul on AVX512-BF16. The weight is an opaque oneDNN tensor then (no
    parameter: it holds no gradient and is never saved). CPU only; `linear` is in bf16,
    and so are the inputs and outputs."""

    def __init__(self, linear: nn.Linear, activation: str = "none", algorithm: str = ""):
        super().__init__()
        self.weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
        self.bias = linear.bias
        self.activation, self.algorithm = activation, algorithm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(
            x, self.weight, self.bias, self.activation, [], self.algorithm
        )


class Bf16Linear(nn.Module):
    """An `nn.Linear` computed in bf16: its input cast to bf16, its bf16 weights (in
    oneDNN's layout with `onednn`), the product accumulated in fp32 inside the kernel,
    its output cast back to the input's dtype, so that whatever follows runs as it did."""

    def __init__(self, linear: nn.Linear, onednn: bool):
        super().__init__()
        # bf16 copies: `linear`'s own tensors may be shared (with the fp32 network, or a
        # tied embedding) and stay as they are.
        low = nn.Linear(
            linear.in_features, linear.out_features, linear.bias is not None, device="meta"
        )
        for name in ("weight", "bias"):
            if getattr(linear, name) is not None:
                value = getattr(linear, name).detach().to(torch.bfloat16)
                setattr(low, name, nn.Parameter(value, requires_grad=False))
        self.inner = OneDNNLinear(low) if onednn else low

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(torch.bfloat16)).to(x.dtype)


def shared_copy(net: nn.Module, own: Iterable[nn.Module]) -> nn.Module:
    """A deep copy of `net` that shares every parameter and buffer with it but those of
    the modules in `own`: the copy's versions of those are its own to change. oneDNN's
    reordered weights (`OneDNNLinear`, which cannot be copied) are always shared."""
    mine = {id(t) for module in own for t in (*module.parameters(), *module.buffers())}
    tensors = [*net.parameters(), *net.buffers()]
    tensors += [m.weight for m in net.modules() if isinstance(m, OneDNNLinear)]
    return copy.deepcopy(net, memo={id(t): t for t in tensors if id(t) not in mine})


def bf16_matmuls(net: nn.Module, onednn: bool | None = None) -> nn.Module:
    """A copy of `net` (fp32) whose `nn.Linear` layers compute in bf16 (`Bf16Linear`)
    and everything else as before, sharing every other parameter with `net`, which is
    left unchanged (keep it for `recheck`). Subclasses of `nn.Linear`, and the linears
    of torch's attention and Transformer layers, are left alone: those modules read the
    weights themselves in their fused paths (`READ_WEIGHTS`). `onednn` (default: the
    layers are on a CPU where oneDNN runs bf16) runs them as `OneDNNLinear`."""
    onednn = onednn_bf16() if onednn is None else onednn
    fast = shared_copy(net, own=())  # the structure copied, every tensor shared
    for parent, name, linear in _plain_linears(fast):
        setattr(parent, name, Bf16Linear(linear, onednn and linear.weight.is_cpu))
    return fast


# torch's modules that read their linears' weights themselves (fused fast paths) rather
# than calling them: a linear in one of these stays as it is.
READ_WEIGHTS = (
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    Bf16Linear,  # already in bf16
)


def _plain_linears(net: nn.Module) -> list[tuple[nn.Module, str, nn.Linear]]:
    """(parent, attribute, layer) for each `nn.Linear` in `net` that `bf16_matmuls`
    replaces: not a subclass, not one a module reads the weights of (`READ_WEIGHTS`)."""
    return [
        (parent, name, child)
        for parent in net.modules()
        if not isinstance(parent, READ_WEIGHTS)
        for name, child in parent.named_children()
        if type(child) is nn.Linear
    ]


def near_ties(logits: torch.Tensor, margin: float = NEAR_TIE) -> torch.Tensor:
    """Rows of `logits` [rows, classes] whose argmax bf16 rounding could flip: the two
    highest within `margin` of the row's largest |logit| (a boolean mask)."""
    if logits.shape[-1] < 2:
        return logits.new_zeros(logits.shape[0], dtype=torch.bool)
    top = logits.topk(2, dim=-1).values
    return top[:, 0] - top[:, 1] <= margin * logits.abs().amax(-1)


def compare(fast: torch.Tensor, exact: torch.Tensor, margin: float = NEAR_TIE) -> dict:
    """How far bf16 moved a classifier's logits, on held-out rows: `fast` and `exact` are
    the bf16 and fp32 networks' logits [rows, classes]. `worst` and `p99` are the largest
    change of any two logits' difference over the row's largest |logit| (what `margin` is
    a share of); `rechecked` the share of rows `recheck` sends to fp32; `flips` the
    argmaxes bf16 alone changes, `outside` those beyond the margin, which reach the
    answers. What NEAR_TIE rests on; measure it for a network of your own."""
    fast, exact = fast.float(), exact.float()
    moved = fast - exact
    change = (moved.unsqueeze(-1) - moved.unsqueeze(-2)).abs().amax((-1, -2))
    change = change / fast.abs().amax(-1).clamp_min(1e-30)
    near = near_ties(fast, margin)
    flipped = fast.argmax(-1) != exact.argmax(-1)
    return {
        "worst": float(change.max()),
        "p99": float(change.quantile(0.99)),
        "rechecked": float(near.float().mean()),
        "flips": int(flipped.sum()),
        "outside": int((flipped & ~near).sum()),
    }


def recheck(
    logits: torch.Tensor,
    exact: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    margin: float = NEAR_TIE,
) -> torch.Tensor:
    """`logits` (fp32, [rows, classes], from a bf16 network) with its near ties
    (`near_ties`) replaced by `exact`'s (the fp32 network) on those rows of `inputs`
    (each batch-first); `exact` runs only when some row is near a tie."""
    near = near_ties(logits, margin)
    if bool(near.any()):
        logits[near] = exact(*(x[near] for x in inputs)).to(logits.dtype)
    return logits
