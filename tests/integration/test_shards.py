"""Issue 13, sharded and streamed input, for real: two `train` processes as two hosts on
loopback (gloo), each given a different, unequal shard of the train and validation
channels and an inputdataconfig.json that says ShardedByS3Key.

Which rows each process saw comes from a throwaway plug-in written to a temporary folder
on PYTHONPATH (as in test_own_plugin.py), whose training and validation steps append the
ids of their batch's rows to a file under the host's SAGEMAKER_BASE_DIR: nothing in the
platform knows about it."""

from __future__ import annotations

import json
import textwrap
import time
from collections import Counter
from pathlib import Path

from tests import helpers
from tests.integration.test_scale import HOSTS, assert_serves, finish, small, start_train

ROW_IDS_PLUGIN = '''
"""Row ids: a linear model whose steps write down which rows they were given."""
from sagemaker_platform.plugin import Monitor, Plugin
from sagemaker_platform.splitting import random_split


class RowIds(Plugin):
    name = "row_ids"

    def columns(self, hp):
        return ["id", "x", "y"]

    def prepare(self, hp, data):
        def arrays(frame):
            return frame["id"].tolist(), frame["x"].tolist(), frame["y"].tolist()

        if data.validation is not None:
            return arrays(data.train), arrays(data.validation)
        train, val = random_split(len(data.train), data.validation_fraction, data.seed)
        return arrays(data.train.iloc[train]), arrays(data.train.iloc[val])

    def build(self, hp, rows, ctx):
        from .model import build

        return build(rows, ctx.batch_size, ctx.seed)

    def monitor(self, hp, rows):
        return Monitor("val_loss", "min")


plugin = RowIds()
'''

ROW_IDS_MODEL = """
import os
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset
from torchmetrics import SumMetric

from sagemaker_platform import loaders


def record(kind, module, ids):
    seen = Path(os.environ["SAGEMAKER_BASE_DIR"]) / "seen"
    seen.mkdir(exist_ok=True)
    name = f"{kind}-epoch{module.current_epoch + 1}-rank{module.global_rank}.txt"
    with open(seen / name, "a") as f:
        f.write("".join(f"{i}\\n" for i in ids.tolist()))


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.val_rows = SumMetric()

    def on_train_start(self):
        # What Lightning iterates: still resumable mid-epoch, split by the platform.
        loader = self.trainer.train_dataloader
        seen = Path(os.environ["SAGEMAKER_BASE_DIR"]) / "seen"
        seen.mkdir(exist_ok=True)
        kinds = f"{type(loader).__name__} {type(loader.sampler).__name__}"
        (seen / f"loader-rank{self.global_rank}.txt").write_text(kinds)

    def training_step(self, batch, batch_idx):
        ids, x, y = batch
        record("train", self, ids)
        loss = nn.functional.mse_loss(self.layer(x[:, None]).squeeze(-1), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids, x, y = batch
        record("val", self, ids)
        loss = nn.functional.mse_loss(self.layer(x[:, None]).squeeze(-1), y)
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(ids))
        self.val_rows(torch.ones(len(ids)).sum())
        self.log("val_rows", self.val_rows, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def dataset(part):
    ids, x, y = part
    return TensorDataset(torch.tensor(ids), torch.tensor(x), torch.tensor(y))


class Data(L.LightningDataModule):
    def __init__(self, rows, batch_size, seed):
        super().__init__()
        self.rows, self.batch_size, self.seed = rows, batch_size, seed

    def train_dataloader(self):
        return loaders.train_loader(dataset(self.rows[0]), self.batch_size, seed=self.seed)

    def val_dataloader(self):
        return loaders.eval_loader(dataset(self.rows[1]), self.batch_size)


def build(rows, batch_size, seed):
    return Module(), Data(rows, batch_size, seed)
"""

# Unequal shards: 40 and 60 training rows, 10 and 17 validation rows. Batches of 8: the
# larger host takes ceil(60 / 8) = 8 steps per epoch, and so must the smaller one.
TRAIN_SHARDS = {"algo-1": range(0, 40), "algo-2": range(40, 100)}
VAL_SHARDS = {"algo-1": range(1000, 1010), "algo-2": range(1010, 1027)}
SHARDED = {"TrainingInputMode": "FastFile", "S3DistributionType": "ShardedByS3Key"}


def write_plugin(root: Path) -> dict[str, str]:
    plugins = root / "plugins"
    (plugins / "row_ids").mkdir(parents=True)
    (plugins / "row_ids" / "__init__.py").write_text(textwrap.dedent(ROW_IDS_PLUGIN))
    (plugins / "row_ids" / "model.py").write_text(textwrap.dedent(ROW_IDS_MODEL))
    (plugins / "row_ids" / "SAGEMAKER_PLUGIN").write_text("# a plug-in for this test\n")
    return {"PYTHONPATH": str(plugins)}


def write_rows(channel: Path, ids: range) -> None:
    channel.mkdir(parents=True)
    lines = ["id,x,y"] + [f"{i},{i % 7 / 7:.4f},{(i % 7) / 3.5:.4f}" for i in ids]
    (channel / "part.csv").write_text("\n".join(lines) + "\n")


def write_host(
    base: Path, host: str, input_config: dict, hyperparameters: dict, validation: bool = True
) -> None:
    write_rows(base / "input" / "data" / "train", TRAIN_SHARDS[host])
    if validation:
        write_rows(base / "input" / "data" / "validation", VAL_SHARDS[host])
    helpers.write_hyperparameters(base, hyperparameters)
    config = base / "input" / "config"
    (config / "inputdataconfig.json").write_text(json.dumps(input_config))
    resource = {"current_host": host, "hosts": HOSTS, "network_interface_name": "lo"}
    (config / "resourceconfig.json").write_text(json.dumps(resource))


def seen(root: Path, kind: str, epoch: int) -> Counter:
    """The row ids every process of the job was given in `epoch`."""
    counts: Counter = Counter()
    for host in HOSTS:
        for path in (root / host / "seen").glob(f"{kind}-epoch{epoch}-rank*.txt"):
            counts.update(int(line) for line in path.read_text().split())
    return counts


def cluster_env(root: Path) -> dict[str, str]:
    return {
        **write_plugin(root),
        "TRAINING_HOST_ADDRESSES": ",".join(f"{h}=127.0.0.1" for h in HOSTS),
        "TRAINING_MASTER_PORT": str(helpers.free_port()),
        "TRAINING_DIST_TIMEOUT": "60",
    }


def test_sharded_hosts_see_every_row_once_per_epoch(tmp_path):
    env = cluster_env(tmp_path)
    hp = {"model": "row_ids", "epochs": "2", "batch_size": "8"}
    config = {"train": SHARDED, "validation": SHARDED}
    procs = {}
    for host in HOSTS:
        write_host(tmp_path / host, host, config, hp)
        procs[host] = start_train(tmp_path / host, env)
    results = finish(procs, timeout=240)
    for host in HOSTS:
        code, out, _ = results[host]
        assert code == 0, f"{host}:\n{out[-4000:]}"
        assert "input train=FastFile/ShardedByS3Key validation=FastFile/ShardedByS3Key" in out
    # One line per host says how many of its rows it repeated to even the steps.
    assert (
        "shard channel=train host=algo-1 rows=40 rows_per_process=60 repeated_rows=20 "
        "job_rows=100 job_repeated_rows=20 dropped_rows=0"
    ) in results["algo-1"][1]
    assert (
        "shard channel=train host=algo-2 rows=60 rows_per_process=60 repeated_rows=0"
        in (results["algo-2"][1])
    )
    # Both hosts took 8 steps per epoch (60 rows in batches of 8): none waited on the other.
    assert "done rank=1 steps=16" in results["algo-2"][1]
    for rank, host in enumerate(HOSTS):  # resumable mid-epoch (resume.SpotCheckpoints)
        loader = (tmp_path / host / "seen" / f"loader-rank{rank}.txt").read_text()
        assert loader == "ResumableLoader HostSplit"

    every_train_row = set(TRAIN_SHARDS["algo-1"]) | set(TRAIN_SHARDS["algo-2"])
    every_val_row = set(VAL_SHARDS["algo-1"]) | set(VAL_SHARDS["algo-2"])
    for epoch in (1, 2):
        train = seen(tmp_path, "train", epoch)
        assert set(train) == every_train_row  # no row dropped, none of the other host's
        repeats = {i: n for i, n in train.items() if n > 1}
        # Exactly the 20 logged repeats, all on the smaller host's own rows, once each.
        assert sum(train.values()) == 120 and sum(n - 1 for n in repeats.values()) == 20
        assert set(repeats) <= set(TRAIN_SHARDS["algo-1"]) and max(repeats.values()) == 2
        # Validation: each host its own shard, every row exactly once in the job.
        assert seen(tmp_path, "val", epoch) == Counter(every_val_row)
    # The validation metric is reduced across the hosts: it counts all 27 rows.
    assert "val_rows=27" in results["algo-1"][1]
    metrics = json.loads((tmp_path / "algo-1" / "output" / "data" / "metrics.json").read_text())
    assert metrics["train_rows"] == 100 and metrics["train_rows_repeated_per_epoch"] == 20
    assert metrics["evaluation_rows"] == "validation rows of algo-1 only"


def test_rows_held_out_of_sharded_train_are_evaluated_once_across_hosts(tmp_path):
    """No validation channel: each host holds out a quarter of its own shard (10 of 40,
    15 of 60); the job evaluates the 25 held-out rows once each and trains on the rest."""
    env = cluster_env(tmp_path)
    hp = {"model": "row_ids", "epochs": "1", "batch_size": "8", "validation_fraction": "0.25"}
    procs = {}
    for host in HOSTS:
        write_host(tmp_path / host, host, {"train": SHARDED}, hp, validation=False)
        procs[host] = start_train(tmp_path / host, env)
    results = finish(procs, timeout=240)
    for host in HOSTS:
        code, out, _ = results[host]
        assert code == 0, f"{host}:\n{out[-4000:]}"
    assert (
        "shard channel=train host=algo-1 rows=30 rows_per_process=45 repeated_rows=15"
        in (results["algo-1"][1])
    )
    assert "done rank=1 steps=6" in results["algo-2"][1]  # ceil(45 / 8) on both hosts
    train, val = seen(tmp_path, "train", 1), seen(tmp_path, "val", 1)
    assert len(val) == 25 and set(val.values()) == {1}
    assert set(train) | set(val) == set(range(100)) and not set(train) & set(val)
    assert sum(train.values()) == 90  # 75 rows, 15 of them twice
    assert "val_rows=25" in results["algo-1"][1]


def test_each_shipped_plugin_trains_on_sharded_hosts_and_serves(
    tmp_path, tiny_backbone, plugin_name
):
    """The shipped plug-ins' own loaders (the text classifier's reads the step count for
    its LR schedule before training starts) under the sharded strategy: each host's 96
    rows in batches of 8 are 12 steps per epoch on each host, not 6."""
    env = {k: v for k, v in cluster_env(tmp_path).items() if k != "PYTHONPATH"}
    hp = small(plugin_name, tiny_backbone, epochs="1")
    sharded = {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key"}
    procs = {}
    for host in HOSTS:
        base = tmp_path / host
        helpers.write_sample_job(base, hp, model=plugin_name)
        config = base / "input" / "config"
        (config / "inputdataconfig.json").write_text(json.dumps({"train": sharded}))
        resource = {"current_host": host, "hosts": HOSTS, "network_interface_name": "lo"}
        (config / "resourceconfig.json").write_text(json.dumps(resource))
        procs[host] = start_train(base, env)
    results = finish(procs, timeout=240)
    for host in HOSTS:
        code, out, _ = results[host]
        assert code == 0, f"{host}:\n{out[-4000:]}"
        assert f"shard channel=train host={host} rows=96 rows_per_process=96 repeated_rows=0" in (
            out
        )
    assert "done rank=1 steps=12" in results["algo-2"][1]
    assert_serves(tmp_path / "algo-1")


def test_replicated_channels_keep_the_job_wide_split(tmp_path):
    """No inputdataconfig.json (a local run): FullyReplicated, so the same rows on every
    host are split across the job, not per host."""
    env = cluster_env(tmp_path)
    hp = {"model": "row_ids", "epochs": "1", "batch_size": "8"}
    procs = {}
    for host in HOSTS:
        base = tmp_path / host
        write_host(base, "algo-2", {}, hp)  # the same 60 + 17 rows on both hosts
        (base / "input" / "config" / "inputdataconfig.json").unlink()
        resource = {"current_host": host, "hosts": HOSTS, "network_interface_name": "lo"}
        (base / "input" / "config" / "resourceconfig.json").write_text(json.dumps(resource))
        procs[host] = start_train(base, env)
    results = finish(procs, timeout=240)
    for host in HOSTS:
        code, out, _ = results[host]
        assert code == 0, f"{host}:\n{out[-4000:]}"
        assert "shard channel=" not in out
    assert seen(tmp_path, "train", 1) == Counter(TRAIN_SHARDS["algo-2"])
    assert "done rank=1 steps=4" in results["algo-2"][1]  # 30 rows per rank, batches of 8


def test_pipe_mode_fails_at_once_naming_the_channel(tmp_path):
    base = tmp_path / "opt_ml"
    helpers.write_sample_job(base, {"epochs": "1"}, model="tabular")
    config = {"train": {"TrainingInputMode": "Pipe", "S3DistributionType": "FullyReplicated"}}
    (base / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(config))
    started = time.monotonic()
    result = helpers.run_entry("train", base)
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    assert helpers.failure_reason(base) == (
        "channel 'train' has TrainingInputMode=Pipe, which this image does not read: "
        "use File or FastFile (launcher: --input-mode File or FastFile)"
    )
    assert "fit model=" not in result.stdout  # failed before the Trainer was built


def test_fast_file_mode_trains_like_file(tmp_path):
    base = tmp_path / "opt_ml"
    helpers.write_sample_job(base, {"epochs": "1"}, model="tabular")
    fast = {"TrainingInputMode": "FastFile", "S3DistributionType": "FullyReplicated"}
    config = {"train": fast, "validation": fast}
    (base / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(config))
    result = helpers.run_entry("train", base)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "input train=FastFile/FullyReplicated validation=FastFile/FullyReplicated" in (
        result.stdout
    )
    assert (base / "model" / "plugin.json").is_file()


def test_a_host_given_no_object_of_a_sharded_channel_says_so(tmp_path):
    base = tmp_path / "opt_ml"
    (base / "input" / "data" / "train").mkdir(parents=True)
    helpers.write_hyperparameters(base, {"model": "tabular"})
    config = {"train": {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key"}}
    (base / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(config))
    result = helpers.run_entry("train", base)
    assert result.returncode == 1
    assert helpers.failure_reason(base) == (
        "channel 'train' has no data files (it is empty); expected files ending in .csv, "
        ".tsv, .jsonl, .json, .parquet; the channel is ShardedByS3Key and this host got none "
        "of its S3 objects: give it at least as many objects as hosts"
    )


def test_hosts_whose_shards_hold_other_classes_fail_saying_why(tmp_path):
    """The tabular model learns its classes from its host's shard. A shard with another
    class in place of one builds a head of the same shape whose rows mean other classes:
    DDP would train it on misaligned labels without a word. Every host fails with the
    reason instead (not a lost peer)."""
    import pandas as pd

    env = {k: v for k, v in cluster_env(tmp_path).items() if k != "PYTHONPATH"}
    env["TRAINING_DIST_TIMEOUT"] = "30"
    sharded = {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key"}
    procs = {}
    for host in HOSTS:
        base = tmp_path / host
        hp = {"model": "tabular", "epochs": "1", "batch_size": "8"}
        helpers.write_sample_job(base, hp, model="tabular")
        config = base / "input" / "config"
        (config / "inputdataconfig.json").write_text(json.dumps({"train": sharded}))
        resource = {"current_host": host, "hosts": HOSTS, "network_interface_name": "lo"}
        (config / "resourceconfig.json").write_text(json.dumps(resource))
        if host == "algo-2":
            for channel in ("train", "validation"):
                for path in (base / "input" / "data" / channel).iterdir():
                    frame = pd.read_csv(path)
                    first = sorted(frame["label"].unique())[0]
                    frame["label"] = frame["label"].replace(first, "zz_other")
                    frame.to_csv(path, index=False)
        procs[host] = start_train(base, env)
    results = finish(procs, timeout=240)
    assert [results[host][0] for host in HOSTS] == [1, 1]
    assert helpers.failure_reason(tmp_path / "algo-1") == (
        "the hosts learned different classes from their shards of a sharded channel: "
        "['budget', 'premium', 'standard'] on algo-1 and ['premium', 'standard', "
        "'zz_other'] on algo-2. A plug-in learns its classes (and vocabularies) from the "
        "rows it is given: shard by S3 objects that each hold every class"
    )
