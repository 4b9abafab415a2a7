"""Logging that reads well in CloudWatch: one line per event, metrics as name=value."""

from __future__ import annotations

import logging
import os
import sys
import warnings


def setup(level: str | None = None) -> None:
    level = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries that chat at INFO, or draw progress bars, in a job log. Call again after
    importing Lightning: its import installs its own handler and level."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # The platform sets the TensorBoard cadence from the channel's rows; a plug-in that
    # makes more or fewer examples than rows (windows, say) would get this at every start.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "urllib3")
    for name in (*names, "matplotlib"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.handlers[:] = []
        logger.propagate = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None:
        transformers_logging.disable_progress_bar()


def kv(**metrics: float | int | str) -> str:
    """`epoch=2 val_f1=0.8312`: the format SageMaker metric definitions match."""
    parts = []
    for name, value in metrics.items():
        if isinstance(value, float):
            small = value != 0 and abs(value) < 1e-3
            parts.append(f"{name}={value:.3e}" if small else f"{name}={value:.4f}")
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)
