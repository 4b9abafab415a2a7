"""The plain network: a small CNN. No Lightning here: serving rebuilds it from
network.json and the saved weights.

    [n, 3, S, S] -> (Conv 3x3, BatchNorm, ReLU) x 2, MaxPool 2: a block, `blocks` times,
    the channels doubling from `width` -> global average pool -> Dropout -> Linear
    -> logits [n, classes]

BatchNorm always sees more than one value per channel, even in a last batch of one
image: the smallest feature map a block normalises is 2 x 2 (image_size >= 2**blocks).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Outputs one logit per class. Global pooling makes it indifferent to where in the
    image the object is, and lets any image size through."""

    def __init__(self, num_classes: int, image_size: int, width: int, blocks: int, dropout: float):
        super().__init__()
        self.config = {
            "num_classes": num_classes,
            "image_size": image_size,
            "width": width,
            "blocks": blocks,
            "dropout": dropout,
        }
        layers: list[nn.Module] = []
        channels = 3
        for block in range(blocks):
            out = width * 2**block
            layers += [
                nn.Conv2d(channels, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SmallCNN:
        return cls(**config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
