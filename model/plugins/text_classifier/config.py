"""The text classifier's own settings: hyperparameters, and one serving variable."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker_platform.config import setting

MAX_LENGTH = 4096  # tokens per text, at most (what preprocessing.json may say too)


@dataclass(frozen=True)
class Hyperparameters:
    """Keys of hyperparameters.json beside the platform's (epochs, batch_size, ...)."""

    # data
    text_column: str = setting("text", "column holding the text")
    label_column: str = setting("label", "column holding the label (strings or integers)")
    # model
    backbone: str = setting(
        "default",
        "Hugging Face model folder, an earlier job's model directory, or hub id; 'default' is "
        "the packaged MiniLM",
    )
    pooling: str = setting("mean", "how token vectors become one vector", choices=("mean", "cls"))
    dropout: float = setting(0.1, "dropout before the classification head", lo=0.0, hi=0.9)
    max_length: int = setting(
        256, "tokens kept per text (longer texts are truncated)", lo=8, hi=MAX_LENGTH
    )
    # optimisation
    learning_rate: float = setting(1e-4, "peak AdamW learning rate", lo=0.0, hi=1.0)
    head_learning_rate: float = setting(
        1e-3, "learning rate of the freshly initialised head", lo=0.0, hi=1.0
    )
    weight_decay: float = setting(0.01, "AdamW weight decay", lo=0.0, hi=1.0)
    warmup_ratio: float = setting(
        0.1, "share of steps with a linear warm-up, then linear decay", lo=0.0, hi=1.0
    )
    group_by_length: bool = setting(
        True, "batch texts of similar length together (less padding), in shuffled order"
    )
    class_weighting: bool = setting(True, "weigh the loss by inverse class frequency")


BACKBONE_ENV = "MODEL_SERVER_BACKBONE"


@dataclass(frozen=True)
class ServeSettings:
    backbone: str = setting(
        "auto",
        "how the text classifier's backbone runs; auto computes BERT-family encoders (BERT, MiniLM, RoBERTa, XLM-R) in plain torch, without importing transformers, and any other through transformers",
        choices=("auto", "transformers"),
        env=BACKBONE_ENV,
    )
