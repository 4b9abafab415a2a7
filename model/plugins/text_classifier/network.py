"""The classifier as a plain `nn.Module`: backbone, pooling, dropout, linear head.

No Lightning here, so serving rebuilds exactly this module from the saved backbone
config and state dict without importing Lightning (nor, for BERT-family backbones,
transformers: `for_inference` builds those with `bert`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import bert


class TextClassifier(nn.Module):
    def __init__(
        self, backbone: nn.Module, num_classes: int, pooling: str = "mean", dropout: float = 0.1
    ):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        # The backbone's own pooler (BERT's tanh layer) is unused: drop it so that no
        # parameter goes without a gradient (DDP would complain) and none is saved.
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None
        self.backbone = backbone
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.config.hidden_size, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def from_pretrained(source: str, num_classes: int, pooling: str, dropout: float) -> TextClassifier:
    """A fresh classifier on pretrained backbone weights from a folder or a hub id."""
    from transformers import AutoModel

    # trust_remote_code=False: a config whose auto_map names code of its own fails here
    # with a reason, instead of asking on stdin whether to run it.
    backbone = AutoModel.from_pretrained(
        source, local_files_only=Path(source).exists(), trust_remote_code=False
    )
    # from_pretrained returns eval mode; Lightning keeps each module's mode as it finds it.
    return TextClassifier(backbone, num_classes, pooling, dropout).train()


def from_config(
    config_dir: Path, num_classes: int, pooling: str, dropout: float = 0.0
) -> TextClassifier:
    """An uninitialised classifier of the saved architecture, built by transformers (for
    training on from an earlier model; its weights are loaded next)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(
        str(config_dir), local_files_only=True, trust_remote_code=False
    )
    with _skip_init():  # the weights come from the checkpoint next: random init is waste
        backbone = AutoModel.from_config(config, trust_remote_code=False)
        return TextClassifier(backbone, num_classes, pooling, dropout)


def for_inference(
    config_dir: Path, config: dict, num_classes: int, pooling: str, backbone: str = "auto"
) -> TextClassifier:
    """An uninitialised classifier of the architecture saved in `config_dir` (`config`
    is its config.json, read by `artifacts`), for serving; its weights are loaded next.
    `backbone="auto"` builds BERT-family backbones in plain torch (`bert`, no
    transformers import); any other, or `backbone="transformers"`, goes through
    transformers."""
    if backbone == "auto" and bert.supports(config) is None:
        return TextClassifier(bert.BertEncoder(config), num_classes, pooling, 0.0)
    return from_config(config_dir, num_classes, pooling)


def _skip_init():
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        import contextlib

        return contextlib.nullcontext()
    return no_init_weights()
