"""The in-process model (no HTTP): every precision loads and answers sensibly."""

import pytest
import torch

from plugins.text_classifier import artifacts, bert
from plugins.text_classifier.bucketing import CostCurve, plan
from sagemaker_platform.errors import UserError
from tests import helpers

TEXTS = ["my package never arrived", "refund my card please", "app crashes", "reset my password"]


@pytest.fixture(scope="module")
def fp32(trained_model):
    return helpers.text_model(trained_model / "model", "fp32", "cpu", threads=1, max_batch_size=2)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precisions_stay_close_to_fp32(trained_model, fp32, precision):
    model = helpers.text_model(trained_model / "model", precision, "cpu", threads=1)
    model.warm_up()
    a, b = fp32.predict_proba(TEXTS), model.predict_proba(TEXTS)
    assert b.shape == (4, 4) and b.dtype == torch.float32
    assert torch.allclose(b.sum(-1), torch.ones(4), atol=1e-4)
    assert (a - b).abs().max() < 0.1


def test_default_bf16_agrees_with_fp32_on_a_weakly_trained_model(trained_model, fp32):
    """The tiny model trains for seconds and barely separates its classes (validation
    accuracy near chance): its argmaxes sit close to ties, where rounding shows. Casting
    the whole network to bf16 flipped 1.4% of them (7 of these 500 texts); bf16 matmuls
    with fp32 everywhere else, and near ties recomputed in fp32, flip none."""
    from plugins.text_classifier import sample

    rows = sample.generate(1500, seed=3)
    texts = [" ".join(r["text"] for r in rows[i : i + 3]) for i in range(0, 1500, 3)]
    model = helpers.text_model(trained_model / "model", "bf16", "cpu", threads=1)
    reference = fp32.predict_proba(texts).argmax(-1)
    agreement = (model.predict_proba(texts).argmax(-1) == reference).float().mean()
    assert agreement >= 0.999


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cpu_encoders_run_their_packed_layers_compiled(trained_model, precision, monkeypatch):
    """On a CPU the packed layers run through TorchScript (`bert.PackedLayer`), the
    recheck's fp32 network too: Python's layers are not called, and the answers are
    theirs to the bit (test_serve checks the `model loaded` line)."""
    from sagemaker_platform import bf16

    model = helpers.text_model(trained_model / "model", precision, "cpu", threads=1)
    python = model.predict_proba(TEXTS, bucket=False)  # before the spy: compiled as well
    if precision == "bf16" and not bf16.onednn_bf16():  # AVX2: torch's bf16 linears
        assert "_packed" not in model.net.backbone.__dict__  # not given to TorchScript
        return
    encoders = [net.backbone for net in (model.net, model.exact) if net is not None]
    assert len(encoders) == (2 if precision == "bf16" else 1)
    assert all(encoder.__dict__.get("_packed") is not None for encoder in encoders)

    def python_layers(*args):
        raise AssertionError("Python's layers ran")

    monkeypatch.setattr(bert.Layer, "forward", python_layers)
    monkeypatch.setattr(bert, "attend", python_layers)
    assert torch.equal(model.predict_proba(TEXTS, bucket=False), python)
    for encoder in encoders:
        encoder.__dict__.pop("_packed")
    monkeypatch.undo()
    assert torch.equal(model.predict_proba(TEXTS, bucket=False), python)


def test_torchscript_off_keeps_pythons_layers(trained_model):
    """MODEL_SERVER_TORCHSCRIPT=false (`Runtime.torchscript`): nothing compiled."""
    from plugins.text_classifier.inference import Model
    from sagemaker_platform.runtime import Runtime

    runtime = Runtime.resolve("bf16", "cpu", 1, 32, torchscript=False)
    model = Model(trained_model / "model", runtime)
    assert all("_packed" not in net.backbone.__dict__ for net in (model.net, model.exact))
    assert model.predict_proba(TEXTS).shape == (4, 4)


def test_bf16_computes_only_the_matmuls_in_bf16_and_shares_the_rest(trained_model):
    model = helpers.text_model(trained_model / "model", "bf16", "cpu", threads=1)
    layer, exact_layer = model.net.backbone.encoder.layer[0], model.exact.backbone.encoder.layer[0]
    assert layer.attention.self.qkv.weight.dtype == torch.bfloat16
    assert layer.intermediate.dense.weight.dtype == torch.bfloat16
    assert exact_layer.attention.self.qkv.weight.dtype == torch.float32
    for net in (model.net, model.exact):  # fp32, one copy for both networks
        assert net.head.weight is model.exact.head.weight
        assert net.backbone.embeddings.word_embeddings.weight.dtype == torch.float32
    assert layer.output.LayerNorm.weight is exact_layer.output.LayerNorm.weight


def test_bf16_without_onednn_bf16_falls_back_to_torch_linears(trained_model, fp32, monkeypatch):
    """An AVX2 CPU: oneDNN cannot build a bf16 matmul there (it raised on every request
    before), so an explicit MODEL_SERVER_PRECISION=bf16 runs torch's bf16 linears."""
    from sagemaker_platform import bf16

    monkeypatch.setattr(bf16, "onednn_bf16", lambda: False)
    model = helpers.text_model(trained_model / "model", "bf16", "cpu", threads=1)
    assert not any(isinstance(m, bf16.OneDNNLinear) for m in model.net.modules())
    assert model.net.backbone.encoder.layer[0].attention.self.qkv.weight.dtype == torch.bfloat16
    assert (model.predict_proba(TEXTS) - fp32.predict_proba(TEXTS)).abs().max() < 0.1


def test_near_ties_are_recomputed_in_fp32(trained_model, fp32):
    from sagemaker_platform.bf16 import near_ties

    logits = torch.tensor([[2.0, 1.99, -1.0], [2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    assert near_ties(logits).tolist() == [True, False, True]
    assert near_ties(torch.tensor([[1.0]])).tolist() == [False]
    model = helpers.text_model(trained_model / "model", "bf16", "cpu", threads=1)
    calls = []
    model.exact.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    tied = torch.tensor([1.0, 1.0, 0.0, 0.0])
    model.net = lambda ids, mask: tied.repeat(len(ids), 1)  # every row a tie in bf16
    probs = model.predict_proba(TEXTS)
    assert calls == [len(TEXTS)]
    assert torch.allclose(probs, fp32.predict_proba(TEXTS), atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_cpu_encoders_skip_padded_tokens_and_answer_the_same(trained_model, precision):
    """A padded token costs a CPU what a real one does, in every precision: the encoders
    compute real tokens only, and answer as over the padded grid."""
    model = helpers.text_model(trained_model / "model", precision, "cpu", threads=1)
    assert model.net.backbone.skip_padding
    texts = [t * (1 + 4 * (i % 2)) for i, t in enumerate(TEXTS)]  # padded by half
    packed = model.predict_proba(texts, bucket=False)
    model.net.backbone.skip_padding = False
    assert torch.allclose(model.predict_proba(texts, bucket=False), packed, atol=1e-5)


def test_bf16_rounds_its_packed_tokens_up_and_answers_the_same(trained_model, monkeypatch):
    """bf16's packed token counts step by 32 (oneDNN builds a kernel per row count):
    the layers (compiled: `bert.PackedLayer`, which Python's hooks do not see into) get
    a multiple of 32 rows, and the repeated rows change no answer."""
    model = helpers.text_model(trained_model / "model", "bf16", "cpu", threads=1)
    assert model.net.backbone.pack_multiple == 32
    rows_seen = []
    pack = bert.Packing.pack
    monkeypatch.setattr(
        bert.Packing, "pack", lambda self, x: rows_seen.append(len(self.gather)) or pack(self, x)
    )
    texts = [t * (1 + 4 * (i % 2)) for i, t in enumerate(TEXTS)]
    rounded = model.predict_proba(texts, bucket=False)
    real = sum(len(r) for r in model.encoder.token_ids(texts))
    assert rows_seen and {n % 32 for n in rows_seen} == {0} and real % 32
    assert set(rows_seen) == {real + -real % 32}
    model.net.backbone.pack_multiple = 1
    assert torch.allclose(model.predict_proba(texts, bucket=False), rounded, atol=1e-5)


def test_chunks_of_similar_length_keep_input_order(fp32):
    texts = [t * (i + 1) for i, t in enumerate(TEXTS * 3)]  # 12 texts > max_batch_size 2
    together = fp32.predict_proba(texts)
    alone = torch.cat([fp32.predict_proba([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-4)


def test_bucketed_passes_answer_like_one_text_at_a_time(trained_model):
    model = helpers.text_model(trained_model / "model", "fp32", "cpu", threads=1, max_batch_size=8)
    model.net.backbone.skip_padding = False  # so that padding costs, and the plan cuts
    model.warm_up()
    assert model.cost is not None  # measured at warm-up
    model.cost = CostCurve((1, 8), (1e-3, 8e-3))  # linear: every cut that saves padding pays
    texts = [t * (1 + 5 * (i % 2)) for i, t in enumerate(TEXTS * 2)]  # short and long, mixed
    rows = model.encoder.token_ids(texts)
    assert len(plan([len(r) for r in rows], 8, model.cost)) > 1
    alone = torch.cat([model.predict_proba([t]) for t in texts])
    assert torch.allclose(model.predict_proba(texts), alone, atol=1e-4)
    assert torch.allclose(model.predict_proba(texts, bucket=False), alone, atol=1e-4)


def test_an_encoder_that_skips_padding_measures_no_curve_and_keeps_batches_whole(trained_model):
    """Its passes cost their real tokens however they are grouped: the warm-up times no
    cost curve (most of its seconds), and mixed lengths share one pass in input order."""
    model = helpers.text_model(trained_model / "model", "fp32", "cpu", threads=1, max_batch_size=8)
    assert model.net.backbone.skip_padding and not model.padded
    model.warm_up()
    assert model.cost is None
    passes = []
    model.net.backbone.register_forward_hook(lambda m, args, out: passes.append(1))
    texts = [t * (1 + 5 * (i % 2)) for i, t in enumerate(TEXTS * 2)]  # short and long, mixed
    together = model.predict_proba(texts)
    assert len(passes) == 1
    alone = torch.cat([model.predict_proba([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-4)


def test_padding_to_a_step_changes_no_answer(fp32):
    """bf16 pads to 16-token steps; the padding is masked, so answers stay the same."""
    plain = fp32.predict_proba(TEXTS)
    fp32.pad_multiple = 16
    try:
        assert torch.allclose(fp32.predict_proba(TEXTS), plain, atol=1e-5)
    finally:
        fp32.pad_multiple = 1


def test_serving_imports_neither_lightning_nor_transformers(trained_model):
    """Lightning is training's; transformers' model code costs 2 s of cold start, and a
    BERT-family backbone is computed in plain torch (`bert`)."""
    import subprocess
    import sys

    code = (
        "import sys; from plugins.text_classifier.inference import Model;"
        f"Model(__import__('pathlib').Path({str(trained_model / 'model')!r})).warm_up();"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning', 'transformers'};"
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(helpers.MODEL_DIR)
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_transformers_backbone_setting_answers_the_same(trained_model, precision):
    """MODEL_SERVER_BACKBONE=transformers, the escape hatch, and the default plain-torch
    encoder give the same probabilities."""
    texts = [*TEXTS, "a longer text " * 12, ""]
    native = helpers.text_model(trained_model / "model", precision, "cpu", threads=1)
    via_transformers = helpers.text_model(
        trained_model / "model", precision, "cpu", 1, backbone="transformers"
    )
    assert type(native.net.backbone).__name__ == "BertEncoder"
    assert type(via_transformers.net.backbone).__name__ == "BertModel"
    if precision == "bf16":  # any backbone: the platform's bf16 matmuls, near ties in fp32
        from sagemaker_platform import bf16

        fast = via_transformers.net.backbone.encoder.layer[0].intermediate.dense
        assert isinstance(fast, bf16.Bf16Linear)
        assert via_transformers.exact.backbone.encoder.layer[0].intermediate.dense.weight.dtype == (
            torch.float32
        )
    a, b = native.predict_proba(texts), via_transformers.predict_proba(texts)
    assert torch.allclose(a, b, atol=1e-5 if precision == "fp32" else 2e-2)
    assert a.argmax(-1).tolist() == b.argmax(-1).tolist()


def test_workers_sharing_cores_take_their_share_and_drop_to_it_mid_batch(trained_model):
    """A model in a worker that shares 2 cores with another (`cores`): alone it computes
    on both; beside a busy worker, on one; when the other starts mid-batch it drops to
    one before the next layer, and it never grows back mid-batch."""
    from sagemaker_platform.cores import CoreShare

    share = CoreShare(cores=2, slots=2, hold_s=0)  # no hold between runs (test_cores)
    share.attach(0)
    model = helpers.text_model(trained_model / "model", "fp32", "cpu", threads=1, share=share)
    layers = model.net.backbone.encoder.layer
    assert len(layers) == 2
    seen = []  # torch threads as each layer starts (after the model's own hook)
    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda m, a, i=i: seen.append((i, torch.get_num_threads())))
    plain = helpers.text_model(trained_model / "model", "fp32", "cpu", threads=1).predict_proba(
        TEXTS
    )

    def run(other_busy: bool, after_first_layer=None) -> list:
        share._busy[1] = int(other_busy)
        hook = layers[0].register_forward_hook(lambda *a: after_first_layer and after_first_layer())
        seen.clear()
        try:
            with model.runtime.computing():  # as the platform runs every predict
                probs = model.predict_proba(TEXTS[:1])
        finally:
            hook.remove()
            share._busy[1] = 0
        assert torch.allclose(probs, plain[:1], atol=1e-5)
        return [threads for _, threads in seen]

    assert run(other_busy=False) == [2, 2]
    assert run(other_busy=True) == [1, 1]
    assert run(False, after_first_layer=lambda: share._busy.__setitem__(1, 1)) == [2, 1]
    assert run(True, after_first_layer=lambda: share._busy.__setitem__(1, 0)) == [1, 1]
    assert share.busy() == 0  # its own flag is down between batches


def test_a_model_computing_alone_on_two_threads_splits_a_batch_with_the_same_answers(
    trained_model,
):
    """No core share (one worker, or the model in a process of its own) and two threads:
    a pass of 32 texts runs as two parts at once (`Runtime.in_parts`), answering as one.
    The parts hold near-equal tokens, not texts: 8 long texts and 24 short ones split
    about 6 | 26, so that neither thread waits on the other."""
    before = torch.get_num_threads()
    try:
        model = helpers.text_model(trained_model / "model", "fp32", "cpu", threads=2)
        passes = []
        forward = model._forward
        model._forward = lambda rows: passes.append([len(r) for r in rows]) or forward(rows)
        texts = [" and ".join(TEXTS * 3)] * 8 + TEXTS * 6
        split = model.predict_proba(texts, bucket=False)
        assert len(passes) == 2 and torch.get_num_threads() == 2
        first, second = sorted(passes, key=len)
        assert sum(map(len, passes)) == 32 and len(first) < 8  # the long texts' part
        assert abs(sum(first) - sum(second)) <= max(first + second)  # near-equal tokens
        passes.clear()
        model.runtime.split_batches = False
        whole = model.predict_proba(texts, bucket=False)
        assert [len(p) for p in passes] == [32]
        assert torch.allclose(split, whole, atol=1e-6)
        assert torch.equal(split.argmax(-1), whole.argmax(-1))
    finally:
        torch.set_num_threads(before)


def test_gpu_only_precisions_are_refused_on_cpu(trained_model):
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        helpers.text_model(trained_model / "model", "fp16", "cpu")


def test_labels_come_from_the_model_dir(trained_model, fp32):
    assert fp32.labels == artifacts.read_spec(trained_model / "model").labels
