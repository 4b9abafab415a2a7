"""Length bucketing: the planner's cuts, judged against known cost curves."""

import random

import pytest

from plugins.text_classifier.bucketing import CostCurve, measure, plan

# Seconds per token of length at batch sizes 1, 8 and 32, as measured on a 2-core CPU.
# fp32: a text costs about the same in any batch but the first.
LINEAR = CostCurve((1, 8, 32), (0.17e-3, 1.0e-3, 3.9e-3))
# bf16 on AMX: a batch of 32 costs little more than a batch of 8.
FLAT = CostCurve((1, 8, 32), (0.15e-3, 0.45e-3, 0.95e-3))


def padded_tokens(lengths, passes):
    return sum(len(p) * max(lengths[i] for i in p) for p in passes)


def total_cost(curve, lengths, passes):
    return sum(curve(len(p), max(lengths[i] for i in p)) for p in passes)


def check_partition(lengths, passes, max_batch):
    flat = sorted(i for p in passes for i in p)
    assert flat == list(range(len(lengths))), "every text in exactly one pass"
    assert all(0 < len(p) <= max_batch for p in passes)


def test_cost_curve_interpolates_and_never_decreases():
    curve = CostCurve((1, 5, 9), (1.0, 0.5, 3.0))  # a noisy dip at 5
    assert curve.seconds_per_token == (1.0, 1.0, 3.0)
    assert curve(1, 10) == 10.0  # g(batch) x length
    assert curve(7, 1) == pytest.approx(2.0)
    assert curve(13, 2) == pytest.approx(10.0)  # the last slope, extended
    with pytest.raises(ValueError):
        CostCurve((1,), (1.0,))


def test_mixed_lengths_are_split_when_cost_is_linear_in_tokens():
    lengths = [12] * 8 + [128] * 8
    random.Random(0).shuffle(lengths)
    passes = plan(lengths, 16, LINEAR)
    check_partition(lengths, passes, 16)
    assert len(passes) == 2
    assert {lengths[i] for i in passes[0]} == {12} and {lengths[i] for i in passes[1]} == {128}
    assert padded_tokens(lengths, passes) == 8 * 12 + 8 * 128


def test_a_large_fixed_cost_keeps_similar_lengths_in_one_pass():
    lengths = [random.Random(1).randint(60, 100) for _ in range(16)]
    assert len(plan(lengths, 16, FLAT)) == 1


def test_the_plan_never_costs_more_than_sorted_windows():
    rng = random.Random(2)
    for curve in (LINEAR, FLAT):
        for _ in range(50):
            lengths = [rng.choice([rng.randint(2, 30), rng.randint(30, 256)]) for _ in range(24)]
            passes = plan(lengths, 8, curve)
            check_partition(lengths, passes, 8)
            windows = plan(lengths, 8, None)
            assert total_cost(curve, lengths, passes) <= total_cost(curve, lengths, windows) + 1e-12


def test_without_a_curve_texts_are_sorted_into_full_windows():
    lengths = [5, 1, 4, 2, 3]
    assert plan(lengths, 2, None) == [[1, 3], [4, 2], [0]]
    assert plan([], 4, LINEAR) == []


def test_measure_times_each_shape_after_building_it_and_skips_batches_of_one():
    calls = []
    curve = measure(lambda batch, length: calls.append((batch, length)), 32, 128)
    assert curve.batches == (1, 8, 32)
    assert calls == [(1, 32), (1, 32), (8, 32), (8, 32), (32, 32), (32, 32)]
    assert measure(lambda b, n: None, 1, 128) is None
    assert measure(lambda b, n: None, 4096, 16).batches == (1, 16, 64)
