"""The plain network: an MLP over standardised numbers and embedded categories.

No Lightning here: serving rebuilds it from network.json and the saved weights.

    numeric [n, N] ─────────────────────────┐
    categorical [n, C] -> one embedding each ┴─ concat -> (Linear, ReLU, Dropout) x H -> Linear
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def embedding_size(cardinality: int) -> int:
    """Width of a category's embedding: half its vocabulary, from 2 up to 16."""
    return max(2, min(16, (cardinality + 1) // 2))


class TabularNet(nn.Module):
    """Outputs one logit per class (classification) or one value (regression)."""

    def __init__(
        self,
        num_numeric: int,
        cardinalities: list[int],
        hidden_sizes: list[int],
        dropout: float,
        outputs: int,
    ):
        super().__init__()
        self.config = {
            "num_numeric": num_numeric,
            "cardinalities": list(cardinalities),
            "hidden_sizes": list(hidden_sizes),
            "dropout": dropout,
            "outputs": outputs,
        }
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in cardinalities)
        width = num_numeric + sum(embedding_size(c) for c in cardinalities)
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(width, outputs)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TabularNet:
        return cls(**config)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric] + [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.hidden(torch.cat(parts, dim=1)))
