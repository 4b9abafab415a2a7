"""The tabular plug-in's hyperparameters, beside the platform's (epochs, batch_size, ...)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sagemaker_platform.config import setting
from sagemaker_platform.errors import UserError


@dataclass(frozen=True)
class Hyperparameters:
    """Keys of hyperparameters.json for `model=tabular`."""

    # data
    label_column: str = setting(
        "label", "column to predict: classes (classification) or a number (regression)"
    )
    feature_columns: str = setting(
        "", "comma-separated input columns; empty: every column but the label"
    )
    categorical_columns: str = setting(
        "",
        "comma-separated feature columns to treat as categories, even when numeric; the "
        "non-numeric feature columns always are",
    )
    task: str = setting(
        "auto",
        "auto: classification when the label is text, or integers with at most 20 distinct "
        "values (fewer than half the rows); else regression",
        choices=("auto", "classification", "regression"),
    )
    # model
    hidden_sizes: str = setting("64,64", "comma-separated widths of the MLP's hidden layers")
    dropout: float = setting(0.1, "dropout after each hidden layer", lo=0.0, hi=0.9)
    # optimisation
    learning_rate: float = setting(1e-3, "AdamW learning rate", lo=0.0, hi=1.0)
    weight_decay: float = setting(1e-4, "AdamW weight decay", lo=0.0, hi=1.0)
    class_weighting: bool = setting(
        True, "classification: weigh the loss by inverse class frequency"
    )


MAX_WIDTH = 65_536  # a hidden layer's widest
# The hidden layers' weights between them (each width times the next): 2**28 is 1 GB in
# fp32, 4 GB with AdamW's state and the gradients. `65536,65536` (16 GB of weights) would
# be killed for memory, with no failure reason, instead of refused here.
MAX_HIDDEN_WEIGHTS = 2**28


def names(text: str) -> list[str]:
    """`"a, b,,c"` -> `["a", "b", "c"]`: a comma-separated list of column names."""
    return [part.strip() for part in text.split(",") if part.strip()]


def hidden_layers(hp: Hyperparameters) -> list[int]:
    """`hidden_sizes` as integers; a UserError naming the key when it is not a list of
    widths from 1 to 65536 ("" is no hidden layer: a linear model), or when its layers
    hold more than MAX_HIDDEN_WEIGHTS weights between them."""
    sizes = []
    for part in names(hp.hidden_sizes):
        try:
            size = int(part)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_WIDTH:
            raise UserError(
                f"hidden_sizes={hp.hidden_sizes!r} is not valid: expected comma-separated "
                f"integers from 1 to {MAX_WIDTH}, e.g. 64,64"
            )
        sizes.append(size)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    if weights > MAX_HIDDEN_WEIGHTS:
        raise UserError(
            f"hidden_sizes={hp.hidden_sizes!r} is not valid: its layers hold {weights:,} "
            f"weights between them, more than {MAX_HIDDEN_WEIGHTS:,} (1 GB in fp32)"
        )
    return sizes
