"""A user's model needs no change to the platform: a plug-in written into a temporary
folder outside the repo, found on PYTHONPATH, trains with `model/train` and serves with
`model/serve`; one copied there passes the shared platform tests as the shipped ones do;
and the skeleton `make new-model` writes trains and serves as it is."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import requests

from tests import helpers

ROOT = Path(__file__).resolve().parents[2]

# A model of a third kind: counting. It predicts how many times each record's list of
# numbers holds its largest value, from a learned threshold; it uses every default of
# the Plugin base class (JSON in, {"predictions": [...]} out), and JSON Lines records.
OWN_PLUGIN = '''
"""Counts: a throwaway plug-in for the test, kept outside the repository."""
from dataclasses import dataclass

from sagemaker_platform.config import setting
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import Monitor, Plugin


@dataclass(frozen=True)
class Hyperparameters:
    values_column: str = setting("values", "column of space-separated numbers")
    width: int = setting(4, "numbers per row", lo=1, hi=64)


class Counts(Plugin):
    name = "counts"
    Hyperparameters = Hyperparameters

    def columns(self, hp):
        return [hp.values_column, "count"]

    def prepare(self, hp, data):
        rows = []
        for _, row in data.train.iterrows():
            numbers = [float(v) for v in str(row[hp.values_column]).split()]
            if len(numbers) != hp.width:
                raise UserError(f"row with {len(numbers)} numbers; width={hp.width}")
            rows.append((numbers, float(row["count"])))
        return rows

    def build(self, hp, rows, ctx):
        from .model import build

        return build(rows, hp.width, ctx.batch_size, ctx.seed)

    def monitor(self, hp, rows):
        return Monitor("val_loss", "min")

    def export(self, hp, rows, module, model_dir):
        (model_dir / "width.txt").write_text(str(hp.width))

    def evaluate(self, hp, rows, module, out_dir):
        return {"val_rows": len(rows)}

    def load(self, model_dir, runtime):
        import logging

        from sagemaker_platform import bf16
        from sagemaker_platform.artifacts import load_state_dict

        from .model import Net

        net = Net(int((model_dir / "width.txt").read_text()))
        net.load_state_dict(load_state_dict(model_dir, prefix="network."))
        if runtime.precision != "bf16":
            return net.eval()
        fast = bf16.bf16_matmuls(net).eval()
        layers = sum(isinstance(m, bf16.Bf16Linear) for m in fast.modules())
        logging.getLogger("serve").info("counts in bf16 layers=%d", layers)
        return fast

    def predict(self, model, records):
        import torch

        with torch.inference_mode():
            return model(torch.tensor(records, dtype=torch.float32)).squeeze(-1).tolist()


plugin = Counts()
'''

OWN_MODEL = """
import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sagemaker_platform import loaders


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layer = nn.Linear(width, 1)

    def forward(self, x):
        return self.layer(x)


class Module(L.LightningModule):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.network(batch[0]).squeeze(-1), batch[1])
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.network(batch[0]).squeeze(-1), batch[1])
        self.log("val_loss", loss, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


class Data(L.LightningDataModule):
    def __init__(self, rows, batch_size, seed):
        super().__init__()
        x = torch.tensor([r[0] for r in rows])
        y = torch.tensor([r[1] for r in rows])
        self.data, self.batch_size, self.seed = TensorDataset(x, y), batch_size, seed

    def train_dataloader(self):
        return loaders.train_loader(self.data, self.batch_size, seed=self.seed)

    def val_dataloader(self):
        return loaders.eval_loader(self.data, self.batch_size)


def build(rows, width, batch_size, seed):
    return Module(Net(width)), Data(rows, batch_size, seed)
"""


def write_counts_job(base: Path, n: int = 64) -> None:
    train = base / "input" / "data" / "train"
    train.mkdir(parents=True)
    lines = ["values,count"]
    for i in range(n):
        numbers = [(i * 7 + j * 3) % 5 for j in range(4)]
        lines.append(f"{' '.join(map(str, numbers))},{numbers.count(max(numbers))}")
    (train / "rows.csv").write_text("\n".join(lines) + "\n")
    helpers.write_hyperparameters(base, {"model": "counts", "epochs": "3", "batch_size": "8"})


def test_a_plugin_outside_the_repo_trains_and_serves(tmp_path):
    plugins = tmp_path / "my_plugins"
    (plugins / "counts").mkdir(parents=True)
    (plugins / "counts" / "__init__.py").write_text(textwrap.dedent(OWN_PLUGIN))
    (plugins / "counts" / "model.py").write_text(textwrap.dedent(OWN_MODEL))
    (plugins / "counts" / "SAGEMAKER_PLUGIN").write_text("# a plug-in kept outside the repo\n")
    env = {"PYTHONPATH": str(plugins)}
    base = tmp_path / "opt_ml"
    write_counts_job(base)

    result = helpers.run_entry("train", base, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "INFO train: fit model=counts" in result.stdout
    manifest = json.loads((base / "model" / "plugin.json").read_text())
    assert manifest == {"format_version": 1, "plugin": "counts", "module": "counts"}
    assert json.loads((base / "output" / "data" / "metrics.json").read_text())["val_rows"] == 64
    # val_rows is in the result line, not in the plug-in's metrics: no chart, one warning
    assert "WARNING train: not charted metrics=val_rows: " in result.stdout, result.stdout[-3000:]

    with helpers.Server(base, env={**env, "MODEL_SERVER_WORKERS": "1"}) as server:
        server.wait_ready()
        r = requests.post(server.url + "/invocations", json=[[4, 4, 1, 0], [0, 1, 2, 3]])
        assert r.status_code == 200, r.text + server.output()[-3000:]
        predictions = r.json()["predictions"]
        assert len(predictions) == 2 and all(isinstance(p, float) for p in predictions)
        lines = b"[4, 4, 1, 0]\n[0, 1, 2, 3]\n"
        r = requests.post(
            server.url + "/invocations",
            data=lines,
            headers={"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"},
        )
        assert r.status_code == 200 and len(r.text.splitlines()) == 2, r.text
        r = requests.post(
            server.url + "/invocations", data=b"a,b", headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        assert "plugin=counts" in server.output()

    # bf16 through the platform's helper (docs/bring-your-own-model.md), on whatever CPU
    # this is: oneDNN's kernels where it has bf16 units, torch's elsewhere.
    bf16_env = {**env, "MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_PRECISION": "bf16"}
    with helpers.Server(base, env=bf16_env) as server:
        server.wait_ready()
        r = requests.post(server.url + "/invocations", json=[[4, 4, 1, 0], [0, 1, 2, 3]])
        assert r.status_code == 200, r.text + server.output()[-3000:]
        assert "counts in bf16 layers=1" in server.output()
        for low, exact in zip(r.json()["predictions"], predictions, strict=True):
            assert abs(low - exact) <= 0.02 * max(1.0, abs(exact)), (low, exact)


def test_an_unknown_model_fails_the_job_naming_the_shipped_ones(tmp_path):
    base = tmp_path / "opt_ml"
    write_counts_job(base)  # model=counts, but nothing puts it on PYTHONPATH
    result = helpers.run_entry("train", base)
    assert result.returncode == 1
    reason = helpers.failure_reason(base)
    assert reason.startswith(
        "model='counts': no such plug-in; shipped: image_classifier, tabular, text_classifier"
    )


def test_the_new_model_skeleton_trains_and_serves_as_it_is(tmp_path):
    import subprocess

    dest = tmp_path / "mine"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "new_model.py"),
            "house_prices",
            "--dest",
            str(dest),
        ],
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in (dest / "house_prices").iterdir()) == [
        "SAGEMAKER_PLUGIN",
        "__init__.py",
        "model.py",
        "sample.py",
    ]
    env = {"PYTHONPATH": str(dest)}
    base = tmp_path / "opt_ml"
    sys.path.insert(0, str(dest))
    try:
        helpers.write_sample_job(base, {"epochs": "3"}, model="house_prices")
        payloads = helpers.sample("house_prices").PAYLOADS
    finally:
        sys.path.remove(str(dest))
    result = helpers.run_entry("train", base, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "INFO train: result best_epoch=" in result.stdout and "val_mse=" in result.stdout
    assert "not charted" not in result.stdout  # the skeleton registers what it reports

    with helpers.Server(base, env={**env, "MODEL_SERVER_WORKERS": "1"}) as server:
        server.wait_ready()
        for kind, body in payloads.items():
            r = requests.post(
                server.url + "/invocations", data=body, headers={"Content-Type": kind}
            )
            assert r.status_code == 200, r.text
            answers = r.json()["predictions"]
            assert len(answers) == 3 and answers[2]["id"] == "c"
        r = requests.post(server.url + "/invocations", json=[{"x1": 1.0}])
        assert r.status_code == 400 and "'x2' must be a number" in r.json()["error"]
        for odd in (10**400, 1e308):  # a 500 for the whole batch, and a null answer
            r = requests.post(server.url + "/invocations", json=[{"x1": odd, "x2": 0.0}])
            assert r.status_code == 400 and "'x1' must be a number" in r.json()["error"]


# The shared platform tests a plug-in kept outside the repository runs: training and its
# model directory, every content type and Accept, bodies of one record (images), the
# error battery. Left out to stay within a few minutes: the soak and batch transform.
OUTSIDE_SUBSET = "pictures and not soak and not batch_transform"


def test_a_plugin_kept_outside_the_repo_passes_the_shared_platform_tests(tmp_path):
    """The image classifier, copied under another name to a folder outside the repo and
    named in PLATFORM_TEST_PLUGINS, as the README tells a user to run the tests on their
    own plug-in: it passes them unchanged (relative imports only, the module it lives
    in whatever the registry found)."""
    outside = tmp_path / "elsewhere"
    shutil.copytree(
        ROOT / "model" / "plugins" / "image_classifier",
        outside / "pictures",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "PYTEST_"))}
    env.update(PYTHONPATH=str(outside), PLATFORM_TEST_PLUGINS="pictures")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/integration/test_platform.py",
            "-k",
            OUTSIDE_SUBSET,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'child'}",
        ],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    summary = re.search(r"(\d+) passed", out)
    assert summary and int(summary.group(1)) >= 25, out[-3000:]  # it ran, not skipped
