"""The cluster as each host derives it: rendezvous, ranks, backend and the variables set."""

import json
from datetime import timedelta

import pytest

from sagemaker_platform import contract, distributed, training
from sagemaker_platform.config import ClusterSettings
from sagemaker_platform.errors import UserError

TWO_HOSTS = {"hosts": ["algo-1", "algo-2"], "network_interface_name": "lo"}
LOOPBACK = {contract.HOST_ADDRESSES_ENV: "algo-1=127.0.0.1,algo-2=127.0.0.1"}


def resource(current="algo-1", hosts=("algo-1",), interface="eth0"):
    return contract.ResourceConfig(current, list(hosts), interface)


def test_one_host_one_device_stays_a_plain_trainer():
    cluster = distributed.resolve(resource(), gpus=0, env={})
    assert not cluster.distributed and cluster.world_size == 1
    assert distributed.process_env(cluster) == {}
    assert distributed.trainer_kwargs(cluster) == {"accelerator": "auto", "devices": 1}


def test_two_hosts_meet_at_the_first_through_the_override():
    for rank, host in enumerate(("algo-1", "algo-2")):
        cluster = distributed.resolve(
            resource(host, TWO_HOSTS["hosts"], "lo"), gpus=0, env=LOOPBACK
        )
        assert (cluster.node_rank, cluster.num_nodes, cluster.world_size) == (rank, 2, 2)
        assert cluster.backend == "gloo"
        assert distributed.process_env(cluster) == {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29500",
            "NODE_RANK": str(rank),
            "WORLD_SIZE": "2",
            "GLOO_SOCKET_IFNAME": "lo",
        }


def test_without_the_override_the_host_name_is_the_address():
    cluster = distributed.resolve(resource("algo-3", ["algo-1", "algo-2", "algo-3"]), env={})
    assert (cluster.master_addr, cluster.node_rank, cluster.world_size) == ("algo-1", 2, 3)


def test_gpus_are_the_devices_and_nccl_uses_the_named_interface():
    cluster = distributed.resolve(resource("algo-2", ["algo-1", "algo-2"]), gpus=4, env={})
    assert (cluster.devices, cluster.world_size, cluster.backend) == (4, 8, "nccl")
    env = distributed.process_env(cluster)
    assert env["NCCL_SOCKET_IFNAME"] == "eth0" and "GLOO_SOCKET_IFNAME" not in env
    assert env["WORLD_SIZE"] == "8" and env["NODE_RANK"] == "1"


def test_one_host_with_several_gpus_meets_on_loopback():
    cluster = distributed.resolve(resource(), gpus=2, env={})
    assert cluster.distributed and cluster.master_addr == "127.0.0.1"
    assert "NCCL_SOCKET_IFNAME" not in distributed.process_env(cluster)


def test_a_user_set_interface_wins(monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "ens5")
    cluster = distributed.resolve(resource(hosts=["algo-1", "algo-2"]), env={})
    assert distributed.process_env(cluster)["GLOO_SOCKET_IFNAME"] == "ens5"


def test_port_and_timeout_come_from_the_environment():
    env = {contract.MASTER_PORT_ENV: "40123", contract.DIST_TIMEOUT_ENV: "45"}
    cluster = distributed.resolve(resource(hosts=["algo-1", "algo-2"]), env=env)
    assert (cluster.master_port, cluster.timeout_s) == (40123, 45)
    assert distributed.resolve(resource(), env={}).timeout_s == ClusterSettings().dist_timeout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (contract.MASTER_PORT_ENV, "http"),
        (contract.MASTER_PORT_ENV, "70000"),
        (contract.DIST_TIMEOUT_ENV, "0"),
        (contract.DIST_TIMEOUT_ENV, "-5"),
    ],
)
def test_bad_numbers_name_their_variable(name, value):
    with pytest.raises(UserError, match=f"^{name}="):
        distributed.resolve(resource(), env={name: value})


def test_host_addresses_parse():
    parse = distributed.parse_host_addresses
    assert parse("") == {}
    assert parse(" algo-1 = 10.0.0.5 , algo-2=ip-10-0-0-6.ec2.internal,") == {
        "algo-1": "10.0.0.5",
        "algo-2": "ip-10-0-0-6.ec2.internal",
    }
    assert parse("algo-1=fe80::1") == {"algo-1": "fe80::1"}


@pytest.mark.parametrize(
    "raw", ["algo-1", "algo-1=", "=10.0.0.5", "algo-1=a,algo-1=b", "algo 1=x", "algo-1=a=b"]
)
def test_a_malformed_override_is_a_user_error_naming_the_variable(raw):
    with pytest.raises(UserError, match=contract.HOST_ADDRESSES_ENV):
        distributed.parse_host_addresses(raw)


def test_an_override_without_the_first_host_is_refused():
    env = {contract.HOST_ADDRESSES_ENV: "algo-2=127.0.0.1"}
    with pytest.raises(UserError, match="not algo-1, the first host"):
        distributed.resolve(resource(hosts=["algo-1", "algo-2"]), env=env)


def test_only_the_first_process_of_the_first_host_is_global_zero():
    assert distributed.is_global_zero(0, env={})
    assert distributed.is_global_zero(0, env={"LOCAL_RANK": "0"})
    assert not distributed.is_global_zero(0, env={"LOCAL_RANK": "1"})
    assert not distributed.is_global_zero(1, env={})


def test_ddp_strategy_for_several_hosts():
    from lightning.pytorch.strategies import DDPStrategy

    cluster = distributed.resolve(resource(hosts=["algo-1", "algo-2"]), env=LOOPBACK)
    kwargs = distributed.trainer_kwargs(cluster)
    strategy = kwargs.pop("strategy")
    assert kwargs == {"accelerator": "cpu", "devices": 1, "num_nodes": 2}
    assert isinstance(strategy, DDPStrategy)
    assert strategy._process_group_backend == "gloo"
    assert strategy._timeout == timedelta(seconds=ClusterSettings().dist_timeout)


def test_a_sharded_channel_takes_the_host_split_strategy():
    from lightning.pytorch.strategies import DDPStrategy

    from sagemaker_platform import sharding
    from sagemaker_platform.sharded_ddp import HostSplitDDP

    cluster = distributed.resolve(resource("algo-2", ["algo-1", "algo-2"]), env=LOOPBACK)
    replicated = distributed.trainer_kwargs(cluster, sharding.Layout())
    assert type(replicated["strategy"]) is DDPStrategy
    assert "use_distributed_sampler" not in replicated  # Lightning's DistributedSampler
    kwargs = distributed.trainer_kwargs(cluster, sharding.Layout(train_local=True), {"c": [1]})
    strategy = kwargs.pop("strategy")
    assert isinstance(strategy, HostSplitDDP) and strategy.host == "algo-2"
    assert strategy.vocabulary == {"c": [1]}  # compared across hosts before DDP starts
    assert strategy.layout == sharding.Layout(train_local=True)
    assert strategy._process_group_backend == "gloo"
    assert kwargs == {
        "accelerator": "cpu",
        "devices": 1,
        "num_nodes": 2,
        "use_distributed_sampler": False,
    }
    # One process: no DDP at all, whatever the channels say.
    single = distributed.resolve(resource(), env={})
    assert distributed.trainer_kwargs(single, sharding.Layout(True, True)) == {
        "accelerator": "auto",
        "devices": 1,
    }


def test_a_cluster_failure_names_the_host_rendezvous_and_timeout():
    cluster = distributed.resolve(resource("algo-2", ["algo-1", "algo-2"]), env=LOOPBACK)
    err = distributed.explain_failure(cluster, RuntimeError("Timed out after 601 seconds\nmore"))
    assert isinstance(err, distributed.ClusterError)
    assert str(err).startswith("algo-2 (rank 1 of 2 hosts) lost the other hosts at 127.0.0.1:29500")
    assert "timeout 600 s" in str(err) and str(err).endswith("Timed out after 601 seconds")


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    (tmp_path / "input" / "config").mkdir(parents=True)
    return tmp_path / "input" / "config" / "resourceconfig.json"


def test_only_rank_zero_writes_the_failure_file(base):
    assert training.writes_failure_file()  # no resourceconfig.json: one host
    base.write_text(json.dumps({"current_host": "algo-2", **TWO_HOSTS}))
    assert not training.writes_failure_file()
    base.write_text(json.dumps({"current_host": "algo-1", **TWO_HOSTS}))
    assert training.writes_failure_file()
    base.write_text("{broken")  # cannot tell the rank: say why
    assert training.writes_failure_file()
