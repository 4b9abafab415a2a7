"""DDP for jobs with a sharded channel: each loader split by the job's `sharding.Layout`.

The Trainer runs it with `use_distributed_sampler=False`, and Lightning hands every
DataLoader through `process_dataloader`, where this strategy puts a `loaders.HostSplit`
around the loader's own sampler: host-local loaders among the host's processes (the
training loader to the count the hosts agree on), replicated ones across the job. Whether
a loader is the training one or a validation one is the Trainer's stage at that moment.
Only jobs with a sharded channel and several processes use it; the others keep
Lightning's DistributedSampler.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import DataLoader, DistributedSampler

from . import sharding
from .errors import UserError
from .loaders import HostSplit


def gather_rows(rows: int, device: Any) -> list[int]:
    """Every process's row count, in global rank order (one all-gather)."""
    import torch
    import torch.distributed as dist

    mine = torch.tensor([rows], dtype=torch.int64, device=device)
    every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    return [int(t.item()) for t in every]


class HostSplitDDP(DDPStrategy):
    """DDPStrategy whose `process_dataloader` splits loaders by the job's layout."""

    def __init__(self, layout: sharding.Layout, host: str, vocabulary: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.layout, self.host, self.vocabulary = layout, host, vocabulary
        self.train_splits: list[sharding.Split] = []  # every host's, once agreed

    def configure_ddp(self) -> None:
        # Each host prepared its own shard: a plug-in that learns its classes or a
        # vocabulary from the rows may have learned other ones, and built a model of
        # another shape (DDP would fail on one host with a shape error and leave the
        # others "connection closed") or, worse, of the same shape with other meanings.
        # Every host says why instead.
        import torch.distributed as dist

        shapes = [(n, tuple(p.shape)) for n, p in self.model.named_parameters()]
        every: list[Any] = [None] * self.world_size
        dist.all_gather_object(every, (self.host, shapes, self.vocabulary))
        if reason := sharding.model_mismatch(every):
            raise UserError(reason)
        super().configure_ddp()

    def process_dataloader(self, dataloader: object) -> object:
        dataloader = super().process_dataloader(dataloader)
        if not isinstance(dataloader, DataLoader) or isinstance(
            dataloader.sampler, DistributedSampler
        ):
            return dataloader  # not a DataLoader, or split already (by the plug-in)
        trainer = self.lightning_module.trainer
        training = trainer.training
        sampler = dataloader.sampler
        rows = len(sampler) if hasattr(sampler, "__len__") else len(dataloader.dataset)
        devices = self.num_processes
        if training and self.layout.train_local:
            every = gather_rows(rows, self.root_device)
            self.train_splits = sharding.train_split(every, devices, self.host, self.global_rank)
            split = self.train_splits[self.node_rank]
            processes, process = devices, self.local_rank
        elif not training and self.layout.validation_local:
            split, processes, process = (
                sharding.local_split(rows, devices),
                devices,
                self.local_rank,
            )
        else:
            processes, process = self.world_size, self.global_rank
            split = sharding.local_split(rows, processes)
        split_sampler = HostSplit(sampler, processes, process, split.per_process)
        return _update_dataloader(dataloader, split_sampler, mode=trainer.state.stage)
