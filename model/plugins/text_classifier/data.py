"""The text classifier's rows: texts and integer labels from the platform's DataFrames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sagemaker_platform.channels import SOURCE
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData
from sagemaker_platform.splitting import encode_labels, held_out, label_names


@dataclass
class Splits:
    """Texts and integer labels, ready for a DataModule."""

    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    names: list[str | int]
    validation: str = "none"  # where val came from: channel, split_<fraction> or none

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def has_validation(self) -> bool:
        return len(self.val_texts) > 0


def check_rows(df: pd.DataFrame, text_column: str, label_column: str, channel: str) -> None:
    """No empty text and no missing label: a UserError naming the first file with one."""
    text = df[text_column]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    if empty.any():
        first = df.index[empty][0]
        raise UserError(
            f"channel '{channel}' has {int(empty.sum())} empty texts "
            f"(first in {df.at[first, SOURCE]}); remove or fill them"
        )
    no_label = df[label_column].isna()
    if no_label.any():
        first = df.index[no_label][0]
        raise UserError(
            f"channel '{channel}' has {int(no_label.sum())} rows without a label "
            f"(first in {df.at[first, SOURCE]})"
        )


def load_splits(data: TrainingData, text_column: str, label_column: str) -> Splits:
    train, val = data.train, data.validation
    check_rows(train, text_column, label_column, "train")
    texts = train[text_column].astype(str).to_numpy()
    names = label_names(train[label_column])
    if len(names) < 2:
        raise UserError(
            f"the training data has a single class ({names[0]!r}); a classifier needs two or more"
        )
    labels = encode_labels(train[label_column], names, "train")
    if val is not None:
        check_rows(val, text_column, label_column, "validation")
        return Splits(
            texts.tolist(),
            labels,
            val[text_column].astype(str).tolist(),
            encode_labels(val[label_column], names, "validation"),
            names,
            "channel",
        )
    tr, va, validation = held_out(data, len(labels), labels)
    return Splits(texts[tr].tolist(), labels[tr], texts[va].tolist(), labels[va], names, validation)
