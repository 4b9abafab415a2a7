"""The one preprocessing path: training and serving both turn text into tensors here.

The settings travel with the model (`preprocessing.json`), so serving tokenizes exactly
as training did: same tokenizer files, same normalisation, same truncation length.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TextSettings:
    max_length: int = 256  # tokens kept; longer texts are truncated from the end
    normalization: str = "NFC"  # unicode normal form applied before tokenizing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TextSettings:
        return cls(**{k: raw[k] for k in ("max_length", "normalization") if k in raw})


def normalize(text: str, settings: TextSettings) -> str:
    return unicodedata.normalize(settings.normalization, text).strip()


def load_tokenizer(source: str | Path):
    """The tokenizer from a folder (never reaching for the network) or a hub id."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(source), local_files_only=Path(source).exists())


def encode(tokenizer, texts: Sequence[str], settings: TextSettings) -> dict[str, Any]:
    """A batch of texts as `input_ids` and `attention_mask` tensors, padded to the
    longest text in the batch (not to max_length: short batches stay cheap)."""
    batch = tokenizer(
        [normalize(t, settings) for t in texts],
        padding="longest",
        truncation=True,
        max_length=settings.max_length,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
