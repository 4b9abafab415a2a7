"""The loaded tabular model: schema, network and device, ready for batches of rows.

`predict` gets rows that `codecs.decode` already checked and transformed with the
schema, from one or several requests: it only stacks them and runs the network.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from sagemaker_platform import logs
from sagemaker_platform.runtime import Runtime

from . import artifacts

log = logging.getLogger("serve")


class TabularModel:
    """A trained tabular network on one device. It computes in fp32 whatever
    MODEL_SERVER_PRECISION says: an MLP this small loses to the casts, its linears in
    bf16 (`bf16.bf16_matmuls`) ran at 0.4-0.6x fp32's speed on AVX512-BF16."""

    def __init__(self, model_dir: Path, runtime: Runtime | None = None):
        import torch

        started = time.perf_counter()
        runtime = runtime or Runtime()
        self.schema = artifacts.read_schema(model_dir)
        self.device = runtime.device
        self.net = artifacts.load_network(model_dir, self.schema).to(self.device)
        self._torch = torch
        log.info(
            "model loaded %s",
            logs.kv(
                device=self.device,
                precision="fp32",
                task=self.schema.task,
                features=len(self.schema.features),
                threads=torch.get_num_threads(),
                seconds=round(time.perf_counter() - started, 3),
            ),
        )

    def predict(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """Class probabilities [n, classes], or predicted values [n] in the target's units."""
        torch = self._torch
        with torch.inference_mode():
            out = self.net(
                torch.from_numpy(numeric).to(self.device),
                torch.from_numpy(categorical).to(self.device),
            ).float()
            if self.schema.task == "classification":
                return torch.softmax(out, dim=-1).cpu().numpy()
            return self.schema.unscale_target(out[:, 0].cpu().numpy().astype(np.float64))
