"""Resumable checkpoints and data order, without a training run."""

import signal
from pathlib import Path

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
from tests import helpers


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


# --- a checkpoint's callback state is hostile too ---------------------------------------
class _Worsening:
    """A LightningModule whose val_loss is its epoch: epoch 1 is the best, then worse."""

    @staticmethod
    def make():
        import lightning as L

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

        return Worsening()


def fit(checkpoints, epochs: int, resume: bool = False, stop=None):
    """A real fit with the platform's checkpoint callbacks, from last.ckpt when `resume`."""
    import lightning as L
    from torch.utils.data import DataLoader

    from sagemaker_platform.resume import EpochCheckpoints, SpotCheckpoints

    best = EpochCheckpoints(
        dirpath=checkpoints, filename="best", monitor="val_loss", mode="min", save_top_k=1,
        save_last=True, enable_version_counter=False,
    )  # fmt: skip
    data = DataLoader(torch.ones(8, 1), batch_size=2)  # 4 steps per epoch
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=[best, SpotCheckpoints(checkpoints), *filter(None, [stop])],
        logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    ckpt = checkpoints / "last.ckpt" if resume else None
    trainer.fit(_Worsening.make(), data, data, ckpt_path=ckpt)
    return best


def tamper(last, **state):
    """Rewrite the EpochCheckpoints state saved in `last` (a weights-only load: plain data)."""
    ckpt = torch.load(last, weights_only=True)
    (key,) = [k for k in ckpt["callbacks"] if k.startswith("EpochCheckpoints")]
    ckpt["callbacks"][key].update(state)
    torch.save(ckpt, last)


def test_a_resumed_run_keeps_its_best_epoch(tmp_path):
    """Spot resume as it must stay: the best score and path survive, and a worse epoch
    after the restart neither replaces best.ckpt nor becomes the exported best."""
    checkpoints = tmp_path / "checkpoints"
    fit(checkpoints, epochs=1)
    best = fit(checkpoints, epochs=3, resume=True)
    assert best.best_model_path == str(checkpoints / "best.ckpt")
    assert float(best.best_model_score) == 0.0
    assert torch.load(checkpoints / "best.ckpt", weights_only=True)["global_step"] == 4
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 12


@pytest.fixture
def victims(tmp_path):
    """A file and a folder beside the base dir, named through checkpoints/../.."""
    (tmp_path / "victim.txt").write_text("keep me")
    (tmp_path / "victim_dir").mkdir()
    (tmp_path / "victim_dir" / "data.bin").write_text("keep me too")
    checkpoints = tmp_path / "opt_ml" / "checkpoints"
    return checkpoints, f"{checkpoints}/../../victim.txt", f"{checkpoints}/../../victim_dir"


def test_callback_state_naming_paths_outside_checkpoints_deletes_nothing(victims, tmp_path, caplog):
    checkpoints, victim_file, victim_dir = victims
    fit(checkpoints, epochs=1)
    tamper(
        checkpoints / "last.ckpt",
        last_model_path=victim_file,
        best_model_path=victim_dir,
        best_k_models={victim_dir: torch.tensor(float("inf"))},
        kth_best_model_path=victim_dir,
        kth_value=torch.tensor(float("inf")),
    )
    best = fit(checkpoints, epochs=3, resume=True)
    assert (tmp_path / "victim.txt").read_text() == "keep me"
    assert (tmp_path / "victim_dir" / "data.bin").read_text() == "keep me too"
    # The run resumed and ended: last.ckpt at the last step, a best checkpoint in the folder.
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 12
    assert best.best_model_path == str(checkpoints / "best.ckpt")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]
    (line,) = [r.getMessage() for r in caplog.records if "outside_checkpoints" in r.getMessage()]
    assert "victim" in line and "\n" not in line


@pytest.fixture
def s3_bucket(monkeypatch, tmp_path):
    """A real moto S3 server on loopback holding the objects a job must never delete."""
    import boto3

    with helpers.moto_s3(tmp_path) as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="victim-bucket")
        for key in ("prod/model.tar.gz", "prod/best.ckpt"):
            s3.put_object(Bucket="victim-bucket", Key=key, Body=b"production")
        yield s3


def test_callback_state_naming_s3_objects_deletes_none(s3_bucket, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    fit(checkpoints, epochs=1)
    url = "s3://victim-bucket/prod/best.ckpt"
    tamper(
        checkpoints / "last.ckpt",
        last_model_path="s3://victim-bucket/prod/model.tar.gz",
        best_model_path=url,
        best_k_models={url: torch.tensor(float("inf"))},
        kth_best_model_path=url,
        kth_value=torch.tensor(float("inf")),
    )
    best = fit(checkpoints, epochs=2, resume=True)
    keys = [o["Key"] for o in s3_bucket.list_objects_v2(Bucket="victim-bucket")["Contents"]]
    assert sorted(keys) == ["prod/best.ckpt", "prod/model.tar.gz"]
    assert best.best_model_path == str(checkpoints / "best.ckpt")
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 8


def test_a_saved_data_position_that_is_no_count_is_ignored(caplog):
    from sagemaker_platform.resume import SpotCheckpoints

    spot = SpotCheckpoints(Path("unused"))
    for saved in ("12\nepoch=99 val_f1=0.999", 2.5, -3, 2**70, None, [1], True):
        spot.load_state_dict({"data_position": saved})
        assert spot._resume_position == 0, saved
    assert "val_f1=0.999" not in caplog.text and "ignored=data_position" in caplog.text
    spot.load_state_dict({"data_position": 7})
    assert spot._resume_position == 7


def test_early_stopping_state_keeps_the_jobs_patience_and_only_numbers(tmp_path):
    """Lightning restores `patience` and any value from the checkpoint: patience 0 stopped
    a resumed job at once, and a string failed it mid-epoch."""
    from sagemaker_platform.resume import EarlyStop

    checkpoints = tmp_path / "checkpoints"
    fit(checkpoints, epochs=1, stop=EarlyStop("val_loss", mode="min", patience=3))
    ckpt = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}" in ckpt["callbacks"]
    for hostile, waited, best in (
        # a count past the patience is no count: 0, and epochs 2 and 3 waited
        ({"patience": 0, "wait_count": 99}, 2, 0.0),
        # nothing usable: afresh, so epoch 2 is the best so far and epoch 3 waited
        ({"patience": "3", "wait_count": "2", "best_score": "x", "stopping_reason": 77}, 1, 1.0),
    ):
        ckpt["callbacks"]["EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"].update(hostile)
        torch.save(ckpt, checkpoints / "last.ckpt")
        stop = EarlyStop("val_loss", mode="min", patience=3)
        fit(checkpoints, epochs=3, resume=True, stop=stop)
        assert (stop.patience, stop.wait_count, stop.stopped_epoch) == (3, waited, 0), hostile
        assert float(stop.best_score) == best
        assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 12


def test_the_exported_checkpoint_is_read_only_from_the_checkpoint_folder(tmp_path):
    from types import SimpleNamespace

    from sagemaker_platform.training import _best_checkpoint

    checkpoints, outside = tmp_path / "checkpoints", tmp_path / "elsewhere.ckpt"
    checkpoints.mkdir()
    module = torch.nn.Linear(1, 1)
    torch.save({"state_dict": module.state_dict(), "epoch": 0}, outside)
    for path in (str(outside), f"{checkpoints}/../elsewhere.ckpt", "s3://bucket/x.ckpt"):
        best = SimpleNamespace(best_model_path=path, last_model_path="", dirpath=str(checkpoints))
        with pytest.raises(UserError, match="is not a \\*.ckpt file in checkpoints/"):
            _best_checkpoint(SimpleNamespace(best=best, module=module))


def test_a_link_in_the_checkpoint_folder_is_refused(tmp_path):
    from sagemaker_platform.resume import check_folder

    checkpoints, victim = tmp_path / "checkpoints", tmp_path / "victim.py"
    checkpoints.mkdir()
    victim.write_text("original")
    check_folder(checkpoints)
    check_folder(tmp_path / "missing")
    (checkpoints / "best.ckpt").symlink_to(victim)
    with pytest.raises(UserError, match=r"^checkpoints/best\.ckpt is a symbolic link; "):
        check_folder(checkpoints)
    assert find_checkpoint(checkpoints) is None  # and never read through it
    (tmp_path / "trial").symlink_to(checkpoints, target_is_directory=True)
    with pytest.raises(UserError, match=r"^the checkpoint folder is a symbolic link"):
        check_folder(tmp_path / "trial")
