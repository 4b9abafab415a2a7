"""The image classifier's hyperparameters, beside the platform's (epochs, batch_size, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker_platform.config import setting
from sagemaker_platform.errors import UserError

MAX_BLOCKS = 5


@dataclass(frozen=True)
class Hyperparameters:
    """Keys of hyperparameters.json for `model=image_classifier`."""

    # data
    image_size: int = setting(
        64, "images are resized to this many pixels square, in training and serving", lo=8, hi=512
    )
    # model
    width: int = setting(16, "channels of the first convolution block", lo=1, hi=128)
    blocks: int = setting(
        3,
        "convolution blocks; each doubles the channels and halves the image",
        lo=1,
        hi=MAX_BLOCKS,
    )
    dropout: float = setting(0.1, "dropout before the classification layer", lo=0.0, hi=0.9)
    # optimisation
    learning_rate: float = setting(1e-3, "AdamW learning rate", lo=0.0, hi=1.0)
    weight_decay: float = setting(1e-4, "AdamW weight decay", lo=0.0, hi=1.0)
    class_weighting: bool = setting(True, "weigh the loss by inverse class frequency")


def check_shape(image_size: int, blocks: int, where: str = "hyperparameters") -> None:
    """Each block halves the image: `image_size` must survive `blocks` halvings."""
    if image_size < 2**blocks:
        raise UserError(
            f"{where}: image_size={image_size} is too small for blocks={blocks} (each block "
            f"halves the image): use image_size >= {2**blocks} or fewer blocks"
        )
