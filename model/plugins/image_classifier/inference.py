"""The loaded image classifier: labels, network and device, ready for batches of images.

`predict` gets pixels that `codecs.decode` already decoded and preprocessed, from one or
several requests: it only stacks them and runs the network.
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


class ImageModel:
    """A trained SmallCNN on one device. It computes in fp32 whatever
    MODEL_SERVER_PRECISION says: its work is in convolutions, which `bf16.bf16_matmuls`
    leaves in fp32 (0.97x at 32 images); with them in bf16 as well, 0.52x fp32's speed
    for one image and 1.05x for 32, on AVX512-BF16."""

    def __init__(self, model_dir: Path, runtime: Runtime | None = None):
        import torch

        started = time.perf_counter()
        runtime = runtime or Runtime()
        self.spec = artifacts.read_spec(model_dir)
        self.labels = self.spec.labels
        self.image_size = self.spec.image_size
        self.device = runtime.device
        self.net = artifacts.load_network(model_dir, self.spec).to(self.device)
        self._torch = torch
        log.info(
            "model loaded %s",
            logs.kv(
                device=self.device,
                precision="fp32",
                classes=len(self.labels),
                image_size=self.image_size,
                threads=torch.get_num_threads(),
                seconds=round(time.perf_counter() - started, 3),
            ),
        )

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities [n, classes] for images [n, 3, size, size]."""
        torch = self._torch
        with torch.inference_mode():
            out = self.net(torch.from_numpy(pixels).to(self.device)).float()
            return torch.softmax(out, dim=-1).cpu().numpy()
