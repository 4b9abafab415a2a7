"""Length-grouped batches: every row once per epoch, little padding, fresh batches each epoch."""

import torch
from text_classifier.lightning_module import LengthGroupedBatchSampler
from torch.utils.data import RandomSampler, SequentialSampler

LENGTHS = [(i * 37) % 101 + 1 for i in range(203)]  # scrambled lengths 1..101


def padded(batches, lengths=LENGTHS):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def make(shuffle=True, drop_last=False, batch_size=8):
    sampler = RandomSampler(range(len(LENGTHS))) if shuffle else SequentialSampler(LENGTHS)
    return LengthGroupedBatchSampler(
        sampler, batch_size, drop_last, lengths=LENGTHS, chunk_batches=4, shuffle=shuffle
    )


def test_every_row_once_and_len_matches():
    torch.manual_seed(0)
    sampler = make()
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert len(batches) == len(sampler) == 26
    assert sorted(len(b) for b in batches) == [3] + [8] * 25  # 203 rows


def test_drop_last_drops_only_the_short_batch():
    torch.manual_seed(0)
    sampler = make(drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25
    assert all(len(b) == 8 for b in batches)


def test_less_padding_than_random_batches():
    torch.manual_seed(0)
    grouped = padded(list(make()))
    order = torch.randperm(len(LENGTHS)).tolist()
    random_batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    assert grouped < 0.75 * padded(random_batches)


def test_epochs_differ_and_seed_reproduces():
    torch.manual_seed(1)
    first, second = list(make()), list(make())
    assert first != second
    torch.manual_seed(1)
    assert list(make()) == first


def test_unshuffled_is_deterministic_and_sorted_within_chunks():
    batches = list(make(shuffle=False))
    assert batches == list(make(shuffle=False))
    chunk = [i for b in batches[:4] for i in b]
    assert sorted(chunk) == list(range(32))
    assert [LENGTHS[i] for i in chunk] == sorted(LENGTHS[i] for i in chunk)
