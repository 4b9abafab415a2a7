"""Multi-host training: the rendezvous, this host's rank, the devices and the backend.

SageMaker starts the same container on every host of a job and tells each one, in
resourceconfig.json, the list of hosts and which one it is. From that alone:

    rendezvous   the first host in `hosts`, on TRAINING_MASTER_PORT (default 29500); its
                 address comes from TRAINING_HOST_ADDRESSES when set, else from DNS
                 (SageMaker resolves algo-1, algo-2, ... inside the job's network);
                 127.0.0.1 when there is one host (its GPUs meet on loopback)
    node rank    the index of `current_host` in `hosts`
    devices      the visible GPUs of each host (NCCL), or one CPU process (gloo)
    world size   hosts x devices
    interface    `network_interface_name` for gloo's and NCCL's sockets, with several hosts

One host with one device keeps the plain single-process Trainer: no process group, no
DistributedSampler. Everything here is a pure function of the resource config and the
environment, except `gpu_count` and `strategy`, which import torch and Lightning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract, sharding
from .config import ClusterSettings, parse_env
from .errors import UserError

# Read by torch.distributed, Lightning, gloo and NCCL.
MASTER_ADDR = "MASTER_ADDR"
MASTER_PORT = "MASTER_PORT"
NODE_RANK = "NODE_RANK"
WORLD_SIZE = "WORLD_SIZE"
LOCAL_RANK = "LOCAL_RANK"  # set by Lightning for the extra processes of a multi-GPU host
GLOO_SOCKET_IFNAME = "GLOO_SOCKET_IFNAME"
NCCL_SOCKET_IFNAME = "NCCL_SOCKET_IFNAME"

_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9:][A-Za-z0-9:._-]*$")  # a name, IPv4 or IPv6


@dataclass(frozen=True)
class Cluster:
    """Where this process stands in the training cluster."""

    resource: contract.ResourceConfig  # hosts, this host, its rank among them
    master_addr: str  # where the first host listens
    master_port: int
    timeout_s: int
    devices: int = 1  # processes per host: visible GPUs, or 1 on CPU
    gpu: bool = False

    @property
    def current_host(self) -> str:
        return self.resource.current_host

    @property
    def node_rank(self) -> int:
        return self.resource.node_rank

    @property
    def num_nodes(self) -> int:
        return self.resource.num_nodes

    @property
    def interface(self) -> str:
        return self.resource.network_interface_name

    @property
    def world_size(self) -> int:
        return self.num_nodes * self.devices

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def backend(self) -> str:
        return "nccl" if self.gpu else "gloo"


def parse_host_addresses(raw: str) -> dict[str, str]:
    """`algo-1=10.0.0.5,algo-2=10.0.0.6` as {host: address}; an empty value is {}."""
    addresses: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, sep, address = (s.strip() for s in item.partition("="))
        if not sep or not _HOST.match(host) or not _ADDRESS.match(address) or host in addresses:
            raise UserError(
                f"{contract.HOST_ADDRESSES_ENV}={raw!r} is not valid: expected "
                "host=address pairs separated by commas, each host once "
                "(algo-1=10.0.0.5,algo-2=10.0.0.6)"
            )
        addresses[host] = address
    return addresses


def resolve(
    resource: contract.ResourceConfig,
    gpus: int = 0,
    env: Mapping[str, str] | None = None,
) -> Cluster:
    """The cluster as this host sees it, from resourceconfig.json and the environment."""
    settings = parse_env(ClusterSettings, os.environ if env is None else env)
    overrides = parse_host_addresses(settings.host_addresses)
    master = resource.master_host
    if overrides and master not in overrides:
        raise UserError(
            f"{contract.HOST_ADDRESSES_ENV} names {', '.join(overrides)} but not {master}, "
            "the first host, where the others meet"
        )
    if master in overrides:
        address = overrides[master]
    else:
        address = master if resource.num_nodes > 1 else "127.0.0.1"
    return Cluster(
        resource=resource,
        master_addr=address,
        master_port=settings.master_port,
        timeout_s=settings.dist_timeout,
        devices=max(1, gpus),
        gpu=gpus > 0,
    )


def process_env(cluster: Cluster) -> dict[str, str]:
    """The variables torch.distributed and Lightning read; empty for a single process.

    The socket interface is set for several hosts only (one host's processes talk over
    loopback and shared memory), and not overwritten when already set, so that a user can
    point gloo or NCCL at another interface than the one SageMaker names.
    """
    if not cluster.distributed:
        return {}
    env = {
        MASTER_ADDR: cluster.master_addr,
        MASTER_PORT: str(cluster.master_port),
        NODE_RANK: str(cluster.node_rank),
        WORLD_SIZE: str(cluster.world_size),
    }
    if cluster.num_nodes > 1 and cluster.interface:
        name = NCCL_SOCKET_IFNAME if cluster.gpu else GLOO_SOCKET_IFNAME
        env[name] = os.environ.get(name, cluster.interface)
    return env


def is_global_zero(node_rank: int, env: Mapping[str, str] | None = None) -> bool:
    """Rank 0 of the whole job: the first host's first process (Lightning sets LOCAL_RANK
    in the extra processes it starts on a multi-GPU host)."""
    env = os.environ if env is None else env
    return node_rank == 0 and env.get(LOCAL_RANK, "0").strip() in ("", "0")


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def trainer_kwargs(
    cluster: Cluster, layout: sharding.Layout | None = None, vocabulary: Any = None
) -> dict[str, Any]:
    """accelerator, devices, num_nodes and strategy for `L.Trainer`.

    A single process keeps `accelerator="auto", devices=1` (no DDP). Otherwise DDP with
    Lightning's plain environment (rendezvous from MASTER_ADDR/MASTER_PORT/NODE_RANK, set
    by `process_env`) and a process-group timeout, so that a host whose peers died or
    never came fails after `timeout_s` instead of waiting forever. With a sharded channel
    (`layout`), DDP that splits each host's rows among its own processes
    (`sharded_ddp.HostSplitDDP`) in place of Lightning's DistributedSampler, and checks
    that the hosts' shards taught the plug-in the same `vocabulary`.
    """
    if not cluster.distributed:
        return {"accelerator": "auto", "devices": 1}
    from datetime import timedelta

    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.strategies import DDPStrategy

    options = {
        "cluster_environment": LightningEnvironment(),
        "process_group_backend": cluster.backend,
        "timeout": timedelta(seconds=cluster.timeout_s),
    }
    kwargs: dict[str, Any] = {
        "accelerator": "gpu" if cluster.gpu else "cpu",
        "devices": cluster.devices,
        "num_nodes": cluster.num_nodes,
    }
    if layout is not None and layout.any_local:
        from .sharded_ddp import HostSplitDDP

        strategy = HostSplitDDP(layout, cluster.current_host, vocabulary, **options)
        return {**kwargs, "strategy": strategy, "use_distributed_sampler": False}
    return {**kwargs, "strategy": DDPStrategy(**options)}


def describe(cluster: Cluster) -> dict[str, str | int]:
    """The `cluster ...` log line's fields."""
    return {
        "host": cluster.current_host,
        "node_rank": cluster.node_rank,
        "num_nodes": cluster.num_nodes,
        "devices": cluster.devices,
        "world_size": cluster.world_size,
        "backend": cluster.backend,
        "master": f"{cluster.master_addr}:{cluster.master_port}",
        "interface": cluster.interface,
    }


class ClusterError(RuntimeError):
    """The hosts could not meet or lost each other: not this host's input."""


def explain_failure(cluster: Cluster, exc: BaseException) -> ClusterError:
    """A rendezvous or collective error as a reason a person can act on."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ClusterError(
        f"{cluster.current_host} (rank {cluster.node_rank} of {cluster.num_nodes} hosts) "
        f"lost the other hosts at {cluster.master_addr}:{cluster.master_port} "
        f"(timeout {cluster.timeout_s} s): one failed or is unreachable, see its log. {first}"
    )
