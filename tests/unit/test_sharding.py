"""The arithmetic of sharded channels: who takes which rows, and how steps are evened."""

from collections import Counter

import pytest

from sagemaker_platform import contract, sharding
from sagemaker_platform.errors import UserError
from sagemaker_platform.loaders import EpochShuffle, HostSplit

SHARDED = contract.ChannelConfig(distribution=contract.SHARDED_BY_S3_KEY)
REPLICATED = contract.ChannelConfig()


def test_the_layout_follows_the_channels():
    assert sharding.layout({}, "train", "validation") == sharding.Layout(False, False)
    assert sharding.layout({"train": SHARDED}, "train", "validation") == sharding.Layout(
        True, False
    )
    assert sharding.layout({"validation": SHARDED}, "train", "validation") == sharding.Layout(
        False, True
    )
    # No validation channel: rows held out of a sharded train channel are this host's own.
    assert sharding.layout({"train": SHARDED}, "train", None) == sharding.Layout(True, True)
    assert sharding.layout({"training": SHARDED}, "training", None).any_local
    assert not sharding.layout({"train": REPLICATED}, "train", None).any_local


def test_pipe_mode_is_refused_naming_the_channel():
    sharding.check_input_modes({"train": contract.ChannelConfig(input_mode="FastFile")})
    with pytest.raises(UserError, match="channel 'validation' has TrainingInputMode=Pipe"):
        sharding.check_input_modes(
            {"train": REPLICATED, "validation": contract.ChannelConfig(input_mode="Pipe")}
        )


def test_unequal_hosts_take_the_same_steps_and_the_smaller_repeats():
    first, second = sharding.even_split([40, 61], processes=2)
    assert first.per_process == second.per_process == 31
    assert (first.repeated, second.repeated) == (22, 1)
    with pytest.raises(ValueError, match="every host needs rows"):
        sharding.even_split([10, 0], processes=1)


def test_a_local_split_pads_as_a_distributed_sampler_does():
    split = sharding.local_split(10, 4)
    assert (split.per_process, split.repeated) == (3, 2)


@pytest.mark.parametrize(("rows", "processes", "per_process"), [(10, 1, 10), (10, 3, 6), (7, 2, 4)])
def test_a_hosts_processes_share_every_row_and_repeat_only_to_fill(rows, processes, per_process):
    order = list(range(100, 100 + rows))
    shares = [sharding.take(order, processes, p, per_process) for p in range(processes)]
    assert all(len(share) == per_process for share in shares)
    counts = Counter(i for share in shares for i in share)
    assert set(counts) == set(order)
    assert sum(counts.values()) - rows == processes * per_process - rows


def test_a_host_split_keeps_the_epoch_order_of_its_sampler():
    """A resumed epoch must see the same order: the split passes set_epoch on and its
    order depends on the seed and the epoch alone."""
    first, again = (HostSplit(EpochShuffle(10, seed=3), 2, 1, 5) for _ in range(2))
    first.set_epoch(4)
    again.set_epoch(4)
    assert list(first) == list(again) and len(first) == 5
    again.set_epoch(5)
    assert list(first) != list(again)
    whole = EpochShuffle(10, seed=3)
    whole.set_epoch(4)
    assert list(first) == list(whole)[1::2]


def test_the_shard_line_says_what_was_repeated(caplog):
    caplog.set_level("INFO", logger="train")
    splits = sharding.train_split([40, 40, 60, 60], devices=2, host="algo-1", rank=0)
    assert splits == [sharding.Split(40, 2, 30), sharding.Split(60, 2, 30)]
    assert caplog.messages == [
        "shard channel=train host=algo-1 rows=40 rows_per_process=30 repeated_rows=20 "
        "job_rows=100 job_repeated_rows=20 dropped_rows=0"
    ]
    caplog.clear()
    sharding.train_split([40, 40, 60, 60], devices=2, host="algo-2", rank=3)
    assert caplog.messages == []  # one line per host, from its first process


def test_a_resumed_epoch_of_a_host_split_goes_on_with_the_batches_it_had_not_seen():
    """What resume.SpotCheckpoints does after a restart: the same epoch's order, less the
    batches the interrupted run had handed out."""
    import torch
    from torch.utils.data import TensorDataset

    from sagemaker_platform.loaders import ResumableLoader

    data = TensorDataset(torch.arange(23))

    def loader():
        split = HostSplit(EpochShuffle(23, seed=7), processes=2, process=0, per_process=15)
        return ResumableLoader(data, sampler=split, batch_size=4)

    whole = loader()
    whole.sampler.set_epoch(2)
    batches = [b[0].tolist() for b in whole]
    assert len(batches) == 4 and whole.position == 4  # 15 rows in batches of 4
    resumed = loader()
    resumed.sampler.set_epoch(2)
    resumed.skip_next(3)
    assert [b[0].tolist() for b in resumed] == batches[3:]


def test_models_that_differ_between_hosts_are_named():
    same = [("w", (3, 4)), ("b", (3,))]
    assert sharding.model_mismatch([("algo-1", same, None), ("algo-2", same, None)]) is None
    reason = sharding.model_mismatch(
        [("algo-1", same, None), ("algo-2", [("w", (2, 4)), ("b", (2,))], None)]
    )
    assert reason.startswith(
        "the hosts built different models from their shards of a sharded channel: "
        "w is (3, 4) on algo-1 and (2, 4) on algo-2."
    )


def test_hosts_whose_shards_taught_other_classes_are_named_even_at_equal_shapes():
    """A class in place of another keeps every shape: only the vocabulary tells, and
    without comparing it the hosts would train one head on misaligned labels."""
    same = [("w", (3, 4))]
    ours = {"classes": ["billing", "delivery", "login"], "categories of city": ["a"]}
    theirs = {"classes": ["billing", "delivery", "refund"], "categories of city": ["a"]}
    every = [("algo-1", same, ours), ("algo-1", same, ours), ("algo-2", same, theirs)]
    assert sharding.model_mismatch(every[:2]) is None
    assert sharding.model_mismatch(every) == (
        "the hosts learned different classes from their shards of a sharded channel: "
        "['billing', 'delivery', 'login'] on algo-1 and ['billing', 'delivery', 'refund'] "
        f"on algo-2. {sharding.HINT}"
    )
    many = {"categories of city": [f"city-{i}" for i in range(100)]}
    reason = sharding.model_mismatch([("algo-1", same, many), ("algo-2", same, {})])
    assert (
        "different categories of city from their shards of a sharded channel: ['city-0'," in reason
        and "... on algo-1" in reason
    )
    assert "None on algo-2" in reason and len(reason) < 400
