"""The platform's bf16 serving for any torch module (`sagemaker_platform.bf16`): its
`nn.Linear` layers in bf16, everything else untouched and shared, and near ties
recomputed by the fp32 network."""

import pytest
import torch
from torch import nn

from sagemaker_platform import bf16


class Block(nn.Module):
    """Something a user might bring: an embedding, linears around a LayerNorm with a
    residual, attention that reads its projection's weight directly, a convolution."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.up = nn.Linear(16, 64)
        self.down = nn.Linear(64, 16)
        self.norm = nn.LayerNorm(16)
        self.conv = nn.Conv1d(16, 16, 3, padding=1)
        self.head = nn.Sequential(nn.GELU(), nn.Linear(16, 3))
        self.register_buffer("offset", torch.full((16,), 0.5))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.offset
        x = x + self.attention(x, x, x, need_weights=False)[0]
        x = self.norm(x + self.down(torch.relu(self.up(x))))
        x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x.mean(1))


def onednn_modes() -> list:
    return [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(
                not bf16.onednn_bf16(), reason="oneDNN runs no bf16 matmul on this CPU (AVX2)"
            ),
        ),
    ]


@pytest.fixture
def net() -> Block:
    torch.manual_seed(0)
    return Block().eval()


@pytest.mark.parametrize("onednn", onednn_modes())
def test_the_linears_compute_in_bf16_and_the_rest_is_shared_and_untouched(net, onednn):
    ids = torch.randint(0, 50, (4, 7))
    with torch.inference_mode():
        before = net(ids)
        fast = bf16.bf16_matmuls(net, onednn=onednn).eval()
        out = fast(ids)
        assert torch.equal(net(ids), before)  # the fp32 network is left as it was
    for name in ("up", "down"):
        layer = getattr(fast, name)
        assert isinstance(layer, bf16.Bf16Linear)
        assert isinstance(layer.inner, bf16.OneDNNLinear if onednn else nn.Linear)
        assert type(getattr(net, name)) is nn.Linear
        assert getattr(net, name).weight.dtype == torch.float32
    assert isinstance(fast.head[1], bf16.Bf16Linear)
    # what is no plain nn.Linear stays fp32, and one copy serves both networks
    assert type(fast.attention.out_proj) is type(net.attention.out_proj)
    assert fast.attention.out_proj.weight is net.attention.out_proj.weight
    for shared in ("embed.weight", "norm.weight", "conv.weight", "attention.in_proj_weight"):
        assert fast.get_parameter(shared) is net.get_parameter(shared)
    assert fast.offset is net.offset
    # fp32 out, close to fp32's answer, and not fp32's answer (the matmuls did round)
    assert out.dtype == torch.float32
    assert torch.allclose(out, before, rtol=0.05, atol=0.05)
    assert not torch.equal(out, before)


def test_a_head_tied_to_the_embedding_leaves_the_embedding_in_fp32():
    """An output layer sharing its weight with the input embedding (a language model's
    head): the bf16 copy is the head's alone, the embedding stays fp32 and shared."""
    torch.manual_seed(0)
    embed, head = nn.Embedding(50, 16), nn.Linear(16, 50)
    head.weight = embed.weight
    net = nn.Sequential(embed, nn.LayerNorm(16), head).eval()
    fast = bf16.bf16_matmuls(net, onednn=False)
    assert fast[0].weight is net[0].weight and fast[0].weight.dtype == torch.float32
    assert fast[2].inner.weight.dtype == torch.bfloat16
    ids = torch.randint(0, 50, (3, 4))
    with torch.inference_mode():
        assert torch.allclose(fast(ids), net(ids), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("onednn", onednn_modes())
def test_a_network_in_bf16_already_is_not_wrapped_twice(net, onednn):
    fast = bf16.bf16_matmuls(net, onednn=onednn)
    again = bf16.bf16_matmuls(fast, onednn=onednn)  # copies oneDNN's weights by sharing them
    assert isinstance(again.up, bf16.Bf16Linear) and type(again.up.inner) is type(fast.up.inner)
    with torch.inference_mode():
        ids = torch.randint(0, 50, (2, 5))
        assert torch.equal(again(ids), fast(ids))


def test_torchs_transformer_layers_keep_the_linears_they_read_the_weights_of():
    """nn.TransformerEncoderLayer's fused fast path (eval, batch_first) reads its linears'
    weights itself: replacing them broke it (an AttributeError on `.weight`)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    net = nn.Sequential(
        nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(32, 3)
    )
    net.eval()
    fast = bf16.bf16_matmuls(net, onednn=False)
    assert type(fast[0].layers[0].linear1) is nn.Linear
    assert fast[0].layers[0].linear1.weight is net[0].layers[0].linear1.weight
    assert isinstance(fast[1], bf16.Bf16Linear)
    with torch.inference_mode():
        x = torch.randn(2, 5, 32)
        assert torch.allclose(fast(x), net(x), rtol=0.05, atol=0.05)


def test_near_ties_are_the_rows_within_the_margin_of_their_scale():
    logits = torch.tensor([[2.0, 1.99, -1.0], [2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-4.0, 1.0, 0.95]])
    assert bf16.near_ties(logits).tolist() == [True, False, True, True]
    assert bf16.near_ties(logits, margin=0.001).tolist() == [False, False, True, False]
    assert bf16.near_ties(torch.tensor([[1.0]])).tolist() == [False]


def test_recheck_recomputes_the_near_ties_alone_on_their_rows_of_every_input():
    logits = torch.tensor([[1.0, 0.999], [3.0, -1.0], [0.5, 0.5]])
    ids = torch.tensor([[10, 11], [20, 21], [30, 31]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    seen = []

    def exact(ids, mask):
        seen.append((ids.tolist(), mask.tolist()))
        return torch.stack([ids[:, 0], -ids[:, 0]], 1).double()  # a dtype of its own

    out = bf16.recheck(logits.clone(), exact, ids, mask)
    assert seen == [([[10, 11], [30, 31]], [[1, 1], [1, 1]])]
    assert out.tolist() == [[10.0, -10.0], [3.0, -1.0], [30.0, -30.0]]
    assert out.dtype == torch.float32
    seen.clear()
    clear = torch.tensor([[2.0, -2.0], [1.0, 5.0]])
    assert torch.equal(bf16.recheck(clear.clone(), exact, ids[:2], mask[:2]), clear)
    assert seen == []  # nothing near a tie: the fp32 network never runs


def test_compare_measures_the_change_the_margin_must_cover_and_the_flips_beyond_it():
    exact = torch.tensor([[1.0, 0.0], [0.5, 0.49], [2.0, -2.0]])
    fast = torch.tensor([[1.0, 0.0], [0.49, 0.5], [1.0, 1.5]]).bfloat16()
    found = bf16.compare(fast, exact)
    assert found["worst"] == pytest.approx(3.0)  # row 3: (3.5 - -1.0) / 1.5
    assert found["rechecked"] == pytest.approx(1 / 3)  # row 2 only: within 2% of 0.5
    assert (found["flips"], found["outside"]) == (2, 1)  # row 3's flip reaches the answer
    assert bf16.compare(exact, exact)["worst"] == 0.0
