"""The plain-torch BERT-family encoder serving uses computes what transformers computes."""

import json

import pytest
import torch
from transformers import (
    AutoModel,
    BertConfig,
    BertModel,
    DistilBertConfig,
    RobertaConfig,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from plugins.text_classifier import bert, network
from tests import helpers

SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 500,
    "max_position_embeddings": 64,
    "initializer_range": 0.5,  # activations large enough that each activation function shows
}
REFERENCES = {
    "bert gelu": lambda: BertModel(BertConfig(**SMALL), add_pooling_layer=False),
    "bert gelu_new, eps 1e-7": lambda: BertModel(
        BertConfig(**SMALL, hidden_act="gelu_new", layer_norm_eps=1e-7), add_pooling_layer=False
    ),
    "bert relu, 3 token types": lambda: BertModel(
        BertConfig(**SMALL, hidden_act="relu", type_vocab_size=3), add_pooling_layer=False
    ),
    "roberta": lambda: RobertaModel(
        RobertaConfig(**SMALL, pad_token_id=1, type_vocab_size=1), add_pooling_layer=False
    ),
    "xlm-roberta silu": lambda: XLMRobertaModel(
        XLMRobertaConfig(**SMALL, pad_token_id=1, hidden_act="silu"), add_pooling_layer=False
    ),
}


def native_copy(reference: torch.nn.Module) -> bert.BertEncoder:
    config = reference.config.to_dict()
    assert bert.supports(config) is None
    native = bert.BertEncoder(config)
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("pooler.")}
    native.load_state_dict(state, assign=True)  # strict: every parameter arrives
    return native.eval()


def batch(pad_id: int, lengths: list[int], width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, SMALL["vocab_size"], (len(lengths), width), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, n:] = pad_id
    return ids, mask


def assert_same_outputs(reference, native, ids, mask):
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = native(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()  # padded positions are masked out downstream; compare the rest
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "skip_padding,multiple",
    [(False, 1), (True, 1), (True, 16)],
    ids=["padded grid", "real tokens only", "real tokens rounded up"],
)
@pytest.mark.parametrize("name", list(REFERENCES))
def test_matches_transformers_with_and_without_padding(name, skip_padding, multiple):
    torch.manual_seed(0)
    reference = REFERENCES[name]().eval()
    native = native_copy(reference)
    native.skip_padding, native.pack_multiple = skip_padding, multiple
    pad = reference.config.pad_token_id or 0
    assert_same_outputs(reference, native, *batch(pad, [20, 7, 1, 13], 20))  # padded rows
    assert_same_outputs(reference, native, *batch(pad, [16, 16], 16, seed=1))  # none padded
    assert_same_outputs(reference, native, *batch(pad, [9], 9, seed=2))  # one text


def matmul_rows(net) -> list[int]:
    """The row count of every matmul `net` runs from now on (filled as it runs)."""
    rows: list[int] = []
    for linear in bert.matmuls(net):
        linear.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    return rows


def test_skipping_padding_computes_only_the_real_tokens():
    """The packed path runs every matrix multiply on the real tokens alone (so that a
    change routing the padded grid through them fails here), and leaves zeros where
    the padding was."""
    reference = REFERENCES["bert gelu"]().eval()
    native = native_copy(reference)
    native.skip_padding = True
    rows_seen = matmul_rows(native)
    ids, mask = batch(0, [20, 7, 1, 13], 20)
    with torch.inference_mode():
        out = native(input_ids=ids, attention_mask=mask).last_hidden_state
    assert set(rows_seen) == {20 + 7 + 1 + 13}
    assert out.shape == (4, 20, SMALL["hidden_size"])
    assert not out[~mask.bool()].any()


@pytest.mark.parametrize("matmuls", ["fp32", "bf16"])
def test_packed_attention_runs_each_text_on_its_own_tokens(monkeypatch, matmuls):
    """No padded key is computed: one attention per text over its real tokens, no mask.
    A short text's is two fp32 matmuls (scores, then the weighted sum) whatever the
    matmuls' precision; a text whose scores would not fit `SMALL_SCORES` goes to torch's
    flash kernel, and the answers agree."""
    # Weights of a fixed draw: from whatever state earlier tests (run in random order) left
    # the generator in, one draw in many put fp32's two paths 2e-5 apart (flash kernel and
    # two matmuls round differently), past the tolerance.
    torch.manual_seed(0)
    native = native_copy(REFERENCES["bert gelu"]().eval())
    if matmuls == "bf16":
        native = bert.bf16_matmuls(native, native)
    native.skip_padding = True
    heads, size = SMALL["num_attention_heads"], SMALL["hidden_size"] // SMALL["num_attention_heads"]
    ids, mask = batch(0, [20, 7, 1, 13], 20)
    with torch.inference_mode():
        all_short = native(input_ids=ids, attention_mask=mask).last_hidden_state

    calls = []
    bmm, sdpa = bert.torch.bmm, bert.F.scaled_dot_product_attention

    def spy_bmm(a, b):
        calls.append(("bmm", tuple(a.shape), tuple(b.shape), a.dtype, b.dtype))
        return bmm(a, b)

    def spy_sdpa(q, k, v, attn_mask=None):
        calls.append(("flash", tuple(q.shape), attn_mask, q.dtype))
        return sdpa(q, k, v, attn_mask=attn_mask)

    monkeypatch.setattr(bert.torch, "bmm", spy_bmm)
    monkeypatch.setattr(bert.F, "scaled_dot_product_attention", spy_sdpa)
    monkeypatch.setattr(bert, "SMALL_SCORES", heads * 13 * 13 * 4)  # 20 tokens: too long
    with torch.inference_mode():
        split = native(input_ids=ids, attention_mask=mask).last_hidden_state
    f32, stored = torch.float32, (torch.bfloat16 if matmuls == "bf16" else torch.float32)
    per_layer = [("flash", (1, heads, 20, size), None, stored)] + [
        call
        for n in (7, 1, 13)
        for call in (
            ("bmm", (heads, n, size), (heads, size, n), f32, f32),  # scores
            ("bmm", (heads, n, n), (heads, n, size), f32, f32),  # weighted values
        )
    ]
    assert calls == per_layer * SMALL["num_hidden_layers"]
    if matmuls == "fp32":  # in bf16 the flash kernel's rounding is the difference
        torch.testing.assert_close(split, all_short, atol=1e-5, rtol=1e-5)


def test_packed_rows_round_up_to_the_multiple_and_leave_zeros_at_padding():
    """`pack_multiple` rounds every matmul's rows up (bf16's oneDNN kernels are built per
    row count); the added rows are never scattered back."""
    native = native_copy(REFERENCES["bert gelu"]().eval())
    native.skip_padding, native.pack_multiple = True, 16
    rows_seen = matmul_rows(native)
    ids, mask = batch(0, [20, 7, 1, 13], 20)
    with torch.inference_mode():
        out = native(input_ids=ids, attention_mask=mask).last_hidden_state
        native.pack_multiple = 1
        exact = native(input_ids=ids, attention_mask=mask).last_hidden_state
    assert set(rows_seen) == {48, 41}  # 20 + 7 + 1 + 13 = 41, rounded up to 48
    assert not out[~mask.bool()].any()
    torch.testing.assert_close(out, exact)


def test_attention_leaves_zeros_in_the_rounding_rows_whatever_the_memory_held(monkeypatch):
    """The rows `pack_multiple` adds carry zeros out of attention (not whatever the new
    buffer held, which may be NaN or denormals, slow in every matmul after)."""
    heads, d = 2, 8
    packing = bert.Packing.of(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]), multiple=8)
    qkv = torch.randn(len(packing.gather), 3 * d)
    poisoned = torch.full((len(packing.gather), d), float("nan"))
    with torch.inference_mode():
        clean = packing.attend(qkv, heads)
        monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *size, **kw: poisoned.clone())
        out = packing.attend(qkv, heads)
    assert out.shape == (8, d)
    assert torch.equal(out[5:], torch.zeros(3, d))
    assert torch.equal(out, clean)


@pytest.mark.parametrize(
    "dense,residual",
    [
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.bfloat16),
    ],
    ids=["fp32", "bf16 matmul into the fp32 stream", "a stream narrower than the sum"],
)
def test_the_residual_sum_without_autograd_is_the_same_bits_in_place(dense, residual):
    """Without autograd `Residual` adds into the block's input, which nothing reads after;
    the bits are those of a new tensor. A stream narrower than the sum (which would
    round it) and any call under autograd get a new tensor, the input left as it was."""
    torch.manual_seed(0)
    block = bert.Residual(16, 8, 1e-12)
    block.dense = torch.nn.Linear(16, 8).to(dense)
    block.LayerNorm = torch.nn.LayerNorm(8, eps=1e-12)
    x, stream = torch.randn(5, 16).to(dense), torch.randn(5, 8).to(residual)
    expected = block.LayerNorm(block.dense(x) + stream).detach()
    before = stream.clone()
    with torch.enable_grad():
        graded = block(x, stream)
    assert graded.requires_grad and torch.equal(stream, before)
    with torch.inference_mode():
        got = block(x, stream)
    assert torch.equal(got, expected)
    in_place = torch.promote_types(dense, residual) == residual
    assert torch.equal(stream, before) != in_place


@pytest.mark.parametrize("matmuls", ["fp32", "bf16"])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_compiled_packed_layers_answer_as_pythons_to_the_bit(monkeypatch, name, matmuls):
    """`compile_packed`: TorchScript runs the packed layers (`PackedLayer`), Python's
    layers no longer run, and the outputs are theirs to the bit: every activation, fp32
    and bf16 (oneDNN's matmuls; torch's bf16 linears are refused), the rounding rows,
    and a text long enough for the flash kernel."""
    from sagemaker_platform import bf16

    torch.manual_seed(0)
    reference = REFERENCES[name]().eval()
    native = native_copy(reference)
    if matmuls == "bf16":
        native = bert.bf16_matmuls(native, native)
    native.skip_padding, native.pack_multiple = True, 16
    monkeypatch.setattr(bert, "SMALL_SCORES", SMALL["num_attention_heads"] * 13 * 13 * 4)
    ids, mask = batch(reference.config.pad_token_id or 0, [20, 7, 1, 13], 20)
    with torch.inference_mode():
        python = native(input_ids=ids, attention_mask=mask).last_hidden_state
    reason = native.compile_packed()
    if matmuls == "bf16" and not bf16.onednn_bf16():  # an AVX2 CPU: torch's bf16 linears
        assert reason == "matmuls ['Linear'] not fp32 or oneDNN"
        return
    assert reason is None

    def python_layers(*args):
        raise AssertionError("Python's layers ran")

    monkeypatch.setattr(bert.Layer, "forward", python_layers)
    monkeypatch.setattr(bert, "attend", python_layers)
    with torch.inference_mode():
        compiled = native(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(compiled, python)


def test_layers_that_cannot_compile_stay_pythons_with_the_reason(monkeypatch):
    """int8's quantized linears are not compiled, nor is anything when TorchScript
    fails (it is deprecated): the encoder runs Python's layers and says why."""
    native = native_copy(REFERENCES["bert gelu"]().eval())
    native.skip_padding = True
    ids, mask = batch(0, [20, 7, 1, 13], 20)
    int8 = torch.ao.quantization.quantize_dynamic(native, {torch.nn.Linear}, dtype=torch.qint8)
    assert int8.compile_packed() == "matmuls ['Linear'] not fp32 or oneDNN"

    def broken(module):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "script", broken)
    assert native.compile_packed() == "TorchScript failed: RuntimeError: no TorchScript here"
    assert "_packed" not in native.__dict__
    with torch.inference_mode():
        assert native(input_ids=ids, attention_mask=mask).last_hidden_state.shape == (4, 20, 32)


def test_a_copy_of_a_compiled_encoder_computes_with_its_own_weights():
    """The compiled layers hold the original's modules: a copy drops them and runs its
    own (Python's), so changing its weights changes its answers, not the original's."""
    import copy

    native = native_copy(REFERENCES["bert gelu"]().eval())
    native.skip_padding = True
    assert native.compile_packed() is None
    twin = copy.deepcopy(native)
    assert "_packed" not in twin.__dict__
    with torch.no_grad():
        twin.encoder.layer[0].output.LayerNorm.weight.mul_(2)
    ids, mask = batch(0, [20, 7, 1, 13], 20)
    with torch.inference_mode():
        a = native(input_ids=ids, attention_mask=mask).last_hidden_state
        b = twin(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.equal(a, b)


def test_matches_the_packaged_minilm_on_real_text():
    """The default backbone, with its real weights and tokenizer."""
    from plugins.text_classifier.text import TextEncoder, tokenizer_for_backbone

    source = str(helpers.minilm_dir())
    reference = AutoModel.from_pretrained(source, local_files_only=True).eval()
    native = native_copy(reference)
    texts = ["my package never arrived", "I was charged twice for one order, refund me", "hi"]
    encoded = TextEncoder(*tokenizer_for_backbone(source, max_length=64))(texts)
    for native.skip_padding in (False, True):
        assert_same_outputs(reference, native, encoded["input_ids"], encoded["attention_mask"])


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"model_type": "distilbert"}, "model_type 'distilbert'"),
        ({"hidden_act": "quick_gelu"}, "hidden_act 'quick_gelu'"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
        ({"is_decoder": True}, "a decoder"),
        ({"embedding_size": 16}, "factorised embeddings"),
    ],
)
def test_other_architectures_are_refused_with_the_reason(change, reason):
    config = {**BertConfig(**SMALL).to_dict(), **change}
    assert reason in bert.supports(config)
    with pytest.raises(ValueError, match=reason):
        bert.BertEncoder(config)


def test_a_missing_weight_is_an_error_not_an_empty_tensor():
    reference = BertModel(BertConfig(**SMALL), add_pooling_layer=False)
    state = reference.state_dict()
    del state["encoder.layer.1.output.dense.weight"]
    with pytest.raises(RuntimeError, match=r"Missing key.*layer\.1\.output\.dense\.weight"):
        bert.BertEncoder(reference.config.to_dict()).load_state_dict(state, assign=True)


def test_for_inference_chooses_plain_torch_or_transformers(tmp_path):
    bert_dir, distil_dir = tmp_path / "bert", tmp_path / "distilbert"
    BertConfig(**SMALL).save_pretrained(str(bert_dir))
    DistilBertConfig(vocab_size=500, dim=32, n_layers=1, n_heads=4, hidden_dim=64).save_pretrained(
        str(distil_dir)
    )
    assert json.loads((distil_dir / "config.json").read_text())["model_type"] == "distilbert"

    def config(folder):
        return json.loads((folder / "config.json").read_text())

    native = network.for_inference(bert_dir, config(bert_dir), 3, "mean")
    assert isinstance(native.backbone, bert.BertEncoder)
    assert native.head.out_features == 3
    forced = network.for_inference(bert_dir, config(bert_dir), 3, "mean", "transformers")
    assert isinstance(forced.backbone, BertModel)
    fallback = network.for_inference(distil_dir, config(distil_dir), 3, "cls")
    assert type(fallback.backbone).__name__ == "DistilBertModel"


def test_every_activation_a_backbone_may_name_has_its_fused_onednn_form():
    from plugins.text_classifier import bert

    assert set(bert.ONEDNN_ACTIVATIONS) == set(bert.ACTIVATIONS)


def _caches(root, entries):
    for name, (level, size) in entries.items():
        (root / name).mkdir()
        (root / name / "level").write_text(f"{level}\n")
        (root / name / "size").write_text(f"{size}\n")
    return root


@pytest.mark.parametrize(
    "entries,expected",
    [
        ({"index0": (1, "32K"), "index1": (1, "32K"), "index2": (2, "1024K")}, 1 << 20),
        ({"index0": (1, "48K"), "index2": (2, "2M"), "index3": (3, "105M")}, 2 << 20),
        ({"index2": (2, "524288")}, 1 << 19),  # no unit: bytes
        ({"index2": (2, "lots"), "index3": (3, "32M")}, 12345),  # unreadable: the default
        ({"index2": (2, "0K")}, 12345),
        ({"index0": (1, "32K")}, 12345),  # no L2 listed
        ({}, 12345),  # no sysfs (not Linux, or a sandbox without it)
    ],
)
def test_the_l2_size_comes_from_sysfs_or_the_default(tmp_path, entries, expected):
    """`SMALL_SCORES` is half of it: the attention matmuls lose past the core's cache."""
    assert bert.l2_bytes(_caches(tmp_path, entries), default=12345) == expected
