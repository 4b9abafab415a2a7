"""Sharded channels: which rows each process of a multi-host job reads.

With `S3DistributionType=FullyReplicated` (the default) every host holds every file of a
channel, and the job splits the rows across all its processes (Lightning's usual
DistributedSampler). With `ShardedByS3Key` SageMaker gives each host a different part of
the channel's S3 objects: splitting those across all processes again would leave each
about 1/N^2 of the data. So a host-local loader is split among that host's processes
only:

    train, sharded        each host's rows among its own processes; the hosts agree (one
                          all-gather of their row counts) on the largest count per process,
                          and a host with fewer rows repeats some of its rows, so that
                          every process takes the same number of steps per epoch and DDP
                          never waits for a host that ran out (`train_split` logs how many)
    validation, local     a sharded validation channel, or (no validation channel) rows
                          held out of a sharded train channel: each host evaluates its own
                          rows, split among its processes, never across hosts again; the
                          metrics are reduced across every process, so they cover the
                          validation rows of the whole job
    replicated            split across every process of the job, as Lightning does

This module is plain arithmetic, imported before torch (the input is checked first);
the sampler is `loaders.HostSplit`, the strategy that installs it `sharded_ddp.HostSplitDDP`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import contract, logs
from .errors import UserError

log = logging.getLogger("train")


@dataclass(frozen=True)
class Layout:
    """Which of a job's loaders hold rows that differ from host to host."""

    train_local: bool = False  # the train channel is ShardedByS3Key
    validation_local: bool = False  # validation rows differ per host (see the module doc)

    @property
    def any_local(self) -> bool:
        return self.train_local or self.validation_local


def check_input_modes(configs: dict[str, contract.ChannelConfig]) -> None:
    """Pipe mode streams a channel through a FIFO, which this image does not read:
    refuse it before anything else, naming the channel and the setting."""
    for name, channel in sorted(configs.items()):
        if channel.input_mode == contract.PIPE_MODE:
            raise UserError(
                f"channel '{name}' has TrainingInputMode=Pipe, which this image does not "
                "read: use File or FastFile (launcher: --input-mode File or FastFile)"
            )


def layout(
    configs: dict[str, contract.ChannelConfig], train: str, validation: str | None
) -> Layout:
    """The layout from inputdataconfig.json and the channels this job reads (`validation`
    None: the plug-in holds rows out of train, which are as local as the train rows)."""
    train_local = contract.channel_config(configs, train).sharded
    if validation is None:
        return Layout(train_local, train_local)
    return Layout(train_local, contract.channel_config(configs, validation).sharded)


# --- the arithmetic ----------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """One host's part of an epoch: its rows, and how many each of its processes takes."""

    rows: int  # rows this host holds
    processes: int  # processes on this host
    per_process: int  # rows each process takes per epoch (the same on every host)

    @property
    def repeated(self) -> int:
        """Rows taken twice (or more) on this host to even the steps."""
        return self.per_process * self.processes - self.rows


def even_split(host_rows: Sequence[int], processes: int) -> list[Split]:
    """Per host, the same count per process for all: the largest host's, so that no row
    is dropped; a smaller host repeats rows to fill its processes' share."""
    if not host_rows or min(host_rows) < 1:
        raise ValueError(f"every host needs rows to train on: {list(host_rows)}")
    per_process = max(math.ceil(rows / processes) for rows in host_rows)
    return [Split(rows, processes, per_process) for rows in host_rows]


def local_split(rows: int, processes: int) -> Split:
    """A host's rows among its processes only, padded as a DistributedSampler pads (at
    most `processes - 1` repeats)."""
    return Split(rows, processes, math.ceil(rows / processes))


def take(order: Sequence[int], processes: int, process: int, per_process: int) -> list[int]:
    """`process`'s share of `order` (this host's order for the epoch): the order is
    cycled to `processes x per_process` positions, then dealt out one by one."""
    total = processes * per_process
    if not order:
        return []
    extended = [order[i % len(order)] for i in range(total)]
    return extended[process::processes]


def train_split(every_rank_rows: list[int], devices: int, host: str, rank: int) -> list[Split]:
    """Every host's even split, from every process's row count (the processes of a host
    report the same count), and the one `shard ...` line per host that says how many of
    its rows it repeats to take as many steps as the largest host."""
    host_rows = every_rank_rows[::devices]
    splits = even_split(host_rows, devices)
    split = splits[rank // devices]
    if rank % devices == 0:
        log.info(
            "shard %s",
            logs.kv(
                channel="train",
                host=host,
                rows=split.rows,
                rows_per_process=split.per_process,
                repeated_rows=split.repeated,
                job_rows=sum(host_rows),
                job_repeated_rows=sum(s.repeated for s in splits),
                dropped_rows=0,
            ),
        )
    return splits


HINT = (
    "A plug-in learns its classes (and vocabularies) from the rows it is given: "
    "shard by S3 objects that each hold every class"
)


def model_mismatch(every: list[tuple[str, list[tuple[str, tuple[int, ...]]], Any]]) -> str | None:
    """Why the hosts' models differ, or None when they agree: from each process's host,
    parameter shapes and `Plugin.vocabulary` (what its shard taught the plug-in). The
    vocabulary is compared first: it names the classes, where a shape only counts them,
    and it catches a shard with another class in place of one, which a shape cannot."""
    first_host, first, first_vocabulary = every[0]
    for host, shapes, vocabulary in every[1:]:
        if vocabulary != first_vocabulary:
            ours, theirs = _entries(first_vocabulary), _entries(vocabulary)
            name = next((n for n in [*ours, *theirs] if ours.get(n) != theirs.get(n)), "vocabulary")
            return (
                f"the hosts learned different {name} from their shards of a sharded channel: "
                f"{_short(ours.get(name))} on {first_host} and {_short(theirs.get(name))} on "
                f"{host}. {HINT}"
            )
        if shapes == first:
            continue
        theirs, ours = dict(shapes), dict(first)
        name = next(
            (n for n in [*ours, *theirs] if ours.get(n) != theirs.get(n)), "the parameter list"
        )
        return (
            f"the hosts built different models from their shards of a sharded channel: "
            f"{name} is {ours.get(name)} on {first_host} and {theirs.get(name)} on {host}. "
            f"{HINT}"
        )
    return None


def _entries(vocabulary: Any) -> dict[str, Any]:
    return vocabulary if isinstance(vocabulary, dict) else {"vocabulary": vocabulary}


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
