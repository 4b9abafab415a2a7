"""DataLoaders that survive a spot interruption, for every plug-in's DataModule.

Use `train_loader` for the training DataLoader: each epoch draws its order from the
seed and the epoch alone (`EpochShuffle`, or your own sampler with `set_epoch`), and the
loader counts the batches it handed out, so that after a restart the interrupted epoch
goes on with exactly the batches it had not seen (`resume.SpotCheckpoints`). Any other
DataLoader still trains; it just restarts a resumed epoch from its first batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from . import sharding


class EpochShuffle(Sampler[int]):
    """A random order per epoch that depends on the seed and the epoch only.

    Lightning calls `set_epoch` before each epoch, including the one a restart resumes,
    so that epoch's order is the same as in the interrupted run. On several processes
    Lightning wraps this sampler and gives each rank its share of the same order.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class HostSplit(DistributedSampler):
    """One process's share of another sampler's order: `per_process` indices per epoch.

    Installed by `sharded_ddp.HostSplitDDP` in jobs with a sharded channel (the plug-in
    keeps calling `train_loader` and `eval_loader`). A DistributedSampler subclass, so
    that Lightning does not split it again; the order still comes from the wrapped
    sampler (`EpochShuffle`, a plug-in's own), whose `set_epoch` it passes on, so that a
    resumed epoch has the order it had and `ResumableLoader` skips the right batches.
    """

    def __init__(self, inner: Sampler[int], processes: int, process: int, per_process: int):
        # Not DistributedSampler.__init__, which reads the process group: the fields it
        # sets are all Lightning and torch look at.
        self.inner = inner
        self.num_replicas, self.rank = processes, process
        self.num_samples, self.total_size = per_process, per_process * processes
        self.epoch, self.shuffle, self.drop_last, self.seed = 0, False, False, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order = list(self.inner)
        return iter(sharding.take(order, self.num_replicas, self.rank, self.num_samples))

    def __len__(self) -> int:
        return self.num_samples


class ResumableLoader(DataLoader):
    """A DataLoader that counts the batches it handed out in the current epoch and can
    skip that many at the start of the next iteration (the resumed epoch).

    The skipped batches are still read and collated (tokenized): a fraction of one
    epoch's tokenization and no training step. No `__init__` of its own: Lightning
    rebuilds DataLoaders from their constructor arguments to insert a DistributedSampler.
    """

    _yielded = 0
    _skip = 0

    @property
    def position(self) -> int:
        """Batches handed out since this epoch's iteration began (skipped ones included)."""
        return self._yielded

    def skip_next(self, batches: int) -> None:
        self._skip = batches

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator: nothing is read, and `_skip` is not taken, before the first batch
        # is asked for, which is after Lightning's set_epoch and `on_train_start`.
        skip, self._skip = self._skip, 0
        self._yielded = 0
        for i, batch in enumerate(super().__iter__()):
            self._yielded += 1
            if i >= skip:
                yield batch


def train_loader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable | None = None,
    sampler: Sampler[int] | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> ResumableLoader:
    """The training DataLoader: shuffled per epoch from `seed` (or in `sampler`'s order,
    which must depend on the seed and `set_epoch` only), resumable mid-epoch."""
    return ResumableLoader(
        dataset,
        sampler=sampler if sampler is not None else EpochShuffle(len(dataset), seed),
        batch_size=batch_size,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def eval_loader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable | None = None,
    sampler: Sampler[int] | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """A validation DataLoader: in order (or `sampler`'s)."""
    return DataLoader(
        dataset,
        sampler=sampler if sampler is not None else SequentialSampler(dataset),
        batch_size=batch_size,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
