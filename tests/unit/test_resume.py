"""Resumable checkpoints and data order, without a training run."""

import signal

import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from sagemaker_platform import errors
from sagemaker_platform.errors import Interrupted, UserError
from sagemaker_platform.loaders import EpochShuffle, ResumableLoader
from sagemaker_platform.resume import (
    check_fits,
    find_checkpoint,
    read_checkpoint,
)


def loader(size=23, batch_size=4, seed=7, epoch=0) -> ResumableLoader:
    sampler = EpochShuffle(size, seed)
    sampler.set_epoch(epoch)
    return ResumableLoader(list(range(size)), batch_size=batch_size, sampler=sampler)


def batches(iterable) -> list[list[int]]:
    return [b.tolist() for b in iterable]


def test_the_order_depends_on_seed_and_epoch_only():
    a, b = EpochShuffle(50, 1), EpochShuffle(50, 1)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)
    assert list(EpochShuffle(50, 2)) != list(EpochShuffle(50, 1))


@pytest.mark.parametrize("stopped_after", [1, 3, 5])
def test_a_restarted_loader_hands_out_exactly_the_unseen_batches(stopped_after):
    full = batches(loader(epoch=2))  # 6 batches, the last one short

    first = loader(epoch=2)
    seen = []
    for batch in first:
        seen.append(batch.tolist())
        if len(seen) == stopped_after:
            break
    assert first.position == stopped_after

    restarted = loader(epoch=2)  # a new process: a new loader, same seed and epoch
    restarted.skip_next(first.position)
    rest = batches(restarted)
    assert seen + rest == full
    assert restarted.position == len(full)
    assert batches(restarted) == full  # the skip applies to one epoch only


def test_a_second_interruption_in_the_same_epoch_still_lines_up():
    full = batches(loader())
    first = loader()
    next(iter(first))  # interrupted after 1 batch
    second = loader()
    second.skip_next(first.position)
    it = iter(second)
    seen = [next(it).tolist(), next(it).tolist()]  # then after 2 more
    assert second.position == 3  # counted from the start of the epoch, not of the run
    third = loader()
    third.skip_next(second.position)
    assert full[:1] + seen + batches(third) == full


def test_ranks_share_one_order_per_epoch():
    """Lightning wraps the sampler for DDP; each rank must get its own share of the same,
    seeded order, so that a restarted rank sees what it would have seen."""

    def shard(rank, epoch):
        wrapped = DistributedSamplerWrapper(EpochShuffle(10, 3), num_replicas=2, rank=rank)
        wrapped.set_epoch(epoch)
        return list(wrapped)

    assert sorted(shard(0, 0) + shard(1, 0)) == list(range(10))
    assert shard(0, 0) == shard(0, 0) and shard(0, 0) != shard(0, 1)


def save(path, step, **extra):
    state = {
        "state_dict": {"head.weight": torch.zeros(4, 8), "head.bias": torch.zeros(4)},
        "global_step": step,
        "epoch": step // 12,
        "loops": {},
        "optimizer_states": [],
        **extra,
    }
    torch.save(state, path)


def test_the_newest_checkpoint_is_the_highest_step(tmp_path):
    assert find_checkpoint(tmp_path / "missing") is None
    assert find_checkpoint(tmp_path) is None
    save(tmp_path / "best.ckpt", 24)
    save(tmp_path / "last.ckpt", 30)
    found = find_checkpoint(tmp_path)
    assert (found.path.name, found.step, found.epoch) == ("last.ckpt", 30, 2)
    save(tmp_path / "last.ckpt", 24)  # same step: last.ckpt, the one SIGTERM rewrites
    assert find_checkpoint(tmp_path).path.name == "last.ckpt"


def test_unreadable_or_weights_only_files_are_skipped(tmp_path, caplog):
    save(tmp_path / "best.ckpt", 12)
    save(tmp_path / "last.ckpt", 30)
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 2])  # killed mid-upload
    torch.save({"state_dict": {}, "global_step": 99}, tmp_path / "model.ckpt")  # no loops
    (tmp_path / "last.ckpt.partial").write_bytes(b"half")  # not *.ckpt
    found = find_checkpoint(tmp_path)
    assert (found.path.name, found.step) == ("best.ckpt", 12)
    assert "skipped=last.ckpt" in caplog.text
    assert read_checkpoint(tmp_path / "model.ckpt") is None


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    save(tmp_path / "last.ckpt", 5)
    found = find_checkpoint(tmp_path)
    module = torch.nn.Module()
    module.head = torch.nn.Linear(8, 4)
    check_fits(found, module)
    module.head = torch.nn.Linear(8, 3)  # three classes now
    with pytest.raises(UserError, match=r"weight head.bias has shape \(4,\) there and \(3,\)"):
        check_fits(found, module)


def test_an_interrupted_job_exits_143_without_a_failure_file(tmp_path):
    def job():
        raise Interrupted(signal.SIGTERM)

    failure = tmp_path / "output" / "failure"
    assert errors.run_job(job, lambda: failure) == 143
    assert not failure.exists()


def test_last_ckpt_is_rewritten_at_every_epoch_end_even_without_a_better_epoch(tmp_path):
    """Lightning alone rewrites last.ckpt at an epoch end only when the epoch also saved
    a best checkpoint; here val_loss worsens after epoch 1, and last.ckpt still moves."""
    import lightning as L
    from torch.utils.data import DataLoader

    from sagemaker_platform.resume import EpochCheckpoints

    class Worsening(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).sum()

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", float(self.current_epoch), on_epoch=True)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = DataLoader(torch.ones(8, 1), batch_size=2)  # 4 steps per epoch
    best = EpochCheckpoints(
        dirpath=tmp_path, filename="best", monitor="val_loss", mode="min", save_last=True
    )
    trainer = L.Trainer(
        max_epochs=3, callbacks=[best], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(Worsening(), data, data)
    read = lambda name: torch.load(tmp_path / name, weights_only=True)  # noqa: E731
    assert read("best.ckpt")["global_step"] == 4  # epoch 1 was the best
    assert read("last.ckpt")["global_step"] == 12  # and last.ckpt followed every epoch
    state = read("last.ckpt")["callbacks"]
    (checkpoint_state,) = [v for k, v in state.items() if k.startswith("EpochCheckpoints")]
    assert checkpoint_state["best_model_score"] == 0.0  # it knows the best so far
