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
