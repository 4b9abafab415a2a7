"""The shared preprocessing path: tokenize, then pad (to the longest, or a step above)."""

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from plugins.text_classifier.text import TextEncoder, TextSettings, padded_length


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
