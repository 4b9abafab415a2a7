"""The shared preprocessing path: tokenize, then pad (to the longest, or a step above)."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from plugins.text_classifier.text import (
    LAST_CUT,
    TextEncoder,
    TextSettings,
    normalize,
    padded_length,
)


@pytest.fixture
def encoder():
    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    return TextEncoder(tokenizer, TextSettings(max_length=4, pad_id=0, pad_token="[PAD]"))


def test_padded_length_rounds_up_to_the_step_and_is_never_zero():
    assert [padded_length(n) for n in (0, 1, 7)] == [1, 1, 7]
    assert [padded_length(n, 16) for n in (0, 1, 16, 17)] == [16, 16, 16, 32]
    assert [padded_length(n, 16, limit=20) for n in (1, 17, 25)] == [16, 20, 25]


def test_token_ids_are_normalised_and_truncated_unpadded(encoder):
    assert encoder.token_ids(["  a b  ", "a b c a b", "zz"]) == [[2, 3], [2, 3, 4, 2], [1]]


def test_pad_masks_exactly_the_padding(encoder):
    batch = encoder.pad([[2, 3, 4], [2]])
    assert batch["input_ids"].tolist() == [[2, 3, 4], [2, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    stepped = encoder.pad([[2, 3, 4], [2]], multiple=8)
    assert stepped["input_ids"].shape == (2, 4)  # a step, but never past max_length (4)
    stepped = encoder.pad([[2], [2]], multiple=2)
    assert stepped["input_ids"].shape == (2, 2)
    assert stepped["attention_mask"].sum(-1).tolist() == [1, 1]
    assert encoder(["a b c", "a"])["input_ids"].tolist() == batch["input_ids"].tolist()


# --- long texts: tokenized from a prefix, to the same ids ---------------------------
def minilm_tokenizer(max_length: int | None = None) -> Tokenizer:
    """The default backbone's tokenizer; with `max_length`, a reference that tokenizes
    whole texts and truncates them, as the encoder did before it read prefixes."""
    from tests.helpers import minilm_dir

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    if max_length:
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
    return tokenizer


class Spy:
    """A tokenizer that records the length of every text it is given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.lengths = tokenizer, []

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def encode(self, text):
        self.lengths.append(len(text))
        return self.tokenizer.encode(text)

    def encode_batch(self, texts):
        self.lengths.extend(map(len, texts))
        return self.tokenizer.encode_batch(texts)


@pytest.mark.parametrize(
    "text",
    [
        "my parcel never arrived and I was charged twice " * 10_000,  # 480 KB
        "a" * 500_000,  # one word
        " " * 500_000 + "a text after half a million blanks",
    ],
    ids=["english", "one-word", "leading-blanks"],
)
def test_a_long_text_is_tokenized_from_a_bounded_prefix(text):
    """Tokens past max_length are dropped: a 5 MB text took 4.3 s to tokenize on a 2-core
    EPYC, for the same answer as its first kilobytes."""
    spy = Spy(minilm_tokenizer())
    encoder = TextEncoder(spy, TextSettings(max_length=32))
    ids = encoder.token_ids([text])[0]
    assert max(spy.lengths) <= 32 * 1024  # max_length x LAST_CUT characters at most
    reference = minilm_tokenizer(32)
    assert ids == reference.encode(normalize(text, encoder.settings)).ids


PIECES = [
    "parcel", "arrived", "don't", "e\u0301", "\u0301", "東京", "😀", "ﬁ", "Å", ",", ".",
    " ", "  ", "\n", "\t", "\u2028", "\u200b", "\x00",
    "x" * 99, "y" * 101, "z" * 300, " " * 60,  # words the tokenizer calls [UNK] past 100
]  # fmt: skip


ENCODING = {n: minilm_tokenizer() for n in (3, 8, 32)}
REFERENCE = {n: minilm_tokenizer(n) for n in (3, 8, 32)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=300),
    times=st.integers(1, 40),
    tail=st.lists(st.sampled_from(PIECES), max_size=10),
    blanks=st.integers(0, 3000),
    max_length=st.sampled_from([3, 8, 32]),
)
def test_a_long_text_gets_the_ids_the_whole_text_gives(pieces, times, tail, blanks, max_length):
    """Every text whose first max_length tokens lie within max_length x LAST_CUT
    characters: words cut at the prefix's end, [UNK] words of over 100 characters,
    combining accents, blanks, Chinese, leading blanks."""
    text = " " * blanks + "".join(pieces) * times + "".join(tail)
    encoder = TextEncoder(ENCODING[max_length], TextSettings(max_length=max_length))
    reference = REFERENCE[max_length]
    expected = reference.encode(normalize(text, encoder.settings))
    # the documented bound: tokens that end further in are not read (the next test)
    assume(max((end for _, end in expected.offsets), default=0) <= max_length * LAST_CUT)
    assert encoder.token_ids([text, "short"]) == [
        expected.ids,
        reference.encode("short").ids,
    ]


def test_a_text_is_never_read_past_max_length_x_1024_characters():
    """The documented bound: tokens further in (behind 5,000 blanks, at max_length 3)
    are not read, where tokenizing them would cost as much as the blanks' length."""
    encoder = TextEncoder(minilm_tokenizer(), TextSettings(max_length=3))
    reference = minilm_tokenizer(3)
    assert encoder.token_ids(["refund" + " " * 5000 + "parcel"]) == [reference.encode("refund").ids]


def test_a_long_text_is_tokenized_without_holding_pythons_lock():
    """`encode` holds Python's lock while it tokenizes: a 1 M-character prefix stopped
    every other thread for 0.3 s (the worker's event loop, /ping), and a hostile regex in
    a tokenizer for minutes. The encoder's long-text path goes through `encode_batch`,
    which lets it go: the other thread here wakes every millisecond or so throughout."""
    import threading
    import time

    encoder = TextEncoder(minilm_tokenizer(), TextSettings(max_length=1024))
    worker = threading.Thread(target=encoder.token_ids, args=(["x" * 3_000_000],))
    worker.start()
    gaps, last = [], time.perf_counter()
    while worker.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    worker.join()
    assert len(gaps) > 20 and max(gaps) < 0.1, (len(gaps), max(gaps))  # held: 0.3 s


@pytest.mark.parametrize(
    "pattern, repeated",
    [
        ("(a+)+b", "(a+)+"),
        ("x(a|aa)*y", "(a|aa)*"),
        (r"(\w+\s?)*$", r"(\w+\s?)*"),
        ("(ab){2,}", "(ab){2,}"),
        ("(ab){1,3}", "(ab){1,3}"),
        ("(?:a+){5}", None),  # a fixed count backtracks polynomially at worst
        ("(ab)?c", None),
        (r"\(a+\)+", None),  # escaped parentheses: no group
        ("[(]a+[)]+", None),  # parentheses in a class: no group
        ("[]()]+", None),
        (" {2,}", None),  # XLM-R's normalizer
        (
            r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
            None,
        ),  # GPT-2's
        (
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
            r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            None,
        ),  # Llama 3's
    ],
)
def test_a_regex_that_repeats_a_group_is_found(pattern, repeated):
    from plugins.text_classifier.text import repeated_group

    assert repeated_group(pattern) == repeated


def test_a_tokenizer_with_a_backtracking_regex_is_refused_at_load():
    """The attack: a model directory whose tokenizer.json splits on `(a+)+b`, where one
    request of 4,000 "a" froze the worker for 37 s."""
    from tokenizers import Regex, pre_tokenizers

    from plugins.text_classifier import artifacts
    from sagemaker_platform.errors import UserError

    tokenizer = minilm_tokenizer()
    artifacts.check_tokenizer(tokenizer, {"vocab_size": 30522})  # the real one passes
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex("(a+)+b"), "isolated"), pre_tokenizers.Whitespace()]
    )
    with pytest.raises(UserError) as err:
        artifacts.check_tokenizer(tokenizer, {"vocab_size": 30522})
    assert str(err.value) == (
        "model directory is corrupt: tokenizer/tokenizer.json has a pre_tokenizer regex "
        "that repeats a group, '(a+)+' in '(a+)+b': such a pattern can take minutes on one text"
    )


def test_training_refuses_a_backbone_whose_tokenizer_backtracks(tmp_path):
    import json
    import shutil

    from plugins.text_classifier.text import tokenizer_for_backbone
    from sagemaker_platform.errors import UserError
    from tests.helpers import minilm_dir

    backbone = tmp_path / "backbone"
    shutil.copytree(minilm_dir(), backbone)
    doc = json.loads((backbone / "tokenizer.json").read_text())
    doc["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            doc["normalizer"],
            {"type": "Replace", "pattern": {"Regex": r"(\s+\S?)+$"}, "content": " "},
        ],
    }
    (backbone / "tokenizer.json").write_text(json.dumps(doc))
    # a generic class keeps tokenizer.json's normalizer (BertTokenizer rebuilds its own)
    config = json.loads((backbone / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (backbone / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(UserError) as err:
        tokenizer_for_backbone(str(backbone), 32)
    assert "has a normalizer regex that repeats a group, '(\\\\s+\\\\S?)+'" in str(err.value)
