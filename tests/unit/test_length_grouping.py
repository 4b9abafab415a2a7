"""Length-grouped order: every row once per epoch, little padding, fresh batches each
epoch, and an order that depends on the seed and the epoch only (resumable)."""

import torch

from plugins.text_classifier.lightning_module import LengthGroupedOrder

LENGTHS = [(i * 37) % 101 + 1 for i in range(203)]  # scrambled lengths 1..101


def batches_of(order, batch_size=8):
    """What a DataLoader(sampler=order, batch_size=...) cuts the stream into."""
    stream = list(order)
    return [stream[i : i + batch_size] for i in range(0, len(stream), batch_size)]


def padded(batches, lengths=LENGTHS):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_row_once_and_the_short_batch_last():
    order = LengthGroupedOrder(LENGTHS, 8, seed=1, chunk_batches=4)
    batches = batches_of(order)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS))) and len(order) == 203
    assert [len(b) for b in batches] == [8] * 25 + [3]


def test_dataloader_cuts_fall_on_the_groups():
    order = LengthGroupedOrder(LENGTHS, 8, seed=1, chunk_batches=4)
    assert batches_of(order) == order.batches()


def test_less_padding_than_random_batches():
    grouped = padded(batches_of(LengthGroupedOrder(LENGTHS, 8, seed=0, chunk_batches=4)))
    random = padded(
        batches_of(
            torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(0)).tolist()
        )
    )
    assert grouped < 0.8 * random


def test_order_depends_on_seed_and_epoch_only():
    def order(epoch, seed=3):
        sampler = LengthGroupedOrder(LENGTHS, 8, seed=seed)
        sampler.set_epoch(epoch)
        torch.manual_seed(epoch * 1000)  # the global RNG must not matter
        return list(sampler)

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1, seed=3) != order(1, seed=4)


def test_without_shuffle_the_order_is_stable_and_sorted_within_chunks():
    order = LengthGroupedOrder(LENGTHS, 8, chunk_batches=4, shuffle=False)
    assert list(order) == list(order)
    first_chunk = list(order)[:32]
    assert [LENGTHS[i] for i in first_chunk] == sorted(LENGTHS[i] for i in range(32))
