"""Training images: the platform's listing of the channels' files -> labels and the split.

Runs in `prepare`, before torch is imported, and reads no image (in FastFile mode that
would fetch every object before the first step): the layout, the file names and sizes
are checked here; each image is decoded in the Dataset, when a step needs it.

    train/<label>/<name>.png (or .jpg, .jpeg; in any folder below <label>/)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sagemaker_platform.channels import PATH, RELATIVE, SIZE, SOURCE
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData
from sagemaker_platform.splitting import encode_labels, held_out

from .image import MAX_FILE_BYTES, SUFFIXES

MIN_IMAGES = 10  # training images, before the held-out split
LAYOUT = "an image channel holds <label>/<name>.png (or .jpg, .jpeg) files"


@dataclass
class Images:
    """Image files and their class indices."""

    paths: list[str]  # what the Dataset opens
    labels: np.ndarray  # int64 class indices
    sources: list[str]  # `train/cat/001.png`: what an error names

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: np.ndarray) -> Images:
        return Images(
            [self.paths[i] for i in index], self.labels[index], [self.sources[i] for i in index]
        )


@dataclass
class ImageRows:
    """What `prepare` hands to the later training steps."""

    names: list[str]  # class names in output order: the label folders, sorted
    train: Images
    val: Images
    validation: str  # where val came from: channel, split_<fraction> or none

    @property
    def has_validation(self) -> bool:
        return len(self.val) > 0


def folder_labels(files: pd.DataFrame) -> pd.Series:
    """Each file's label, its first folder in the channel; a UserError naming the first
    file that is not an image in a label folder, or is empty or too large."""
    for relative, size, source in zip(files[RELATIVE], files[SIZE], files[SOURCE], strict=True):
        if "/" not in relative:
            raise UserError(f"{source} is not in a label folder: {LAYOUT}")
        if not relative.lower().endswith(SUFFIXES):
            raise UserError(f"{source} is not a .png, .jpg or .jpeg file: {LAYOUT}")
        if size == 0:
            raise UserError(f"{source} is empty")
        if size > MAX_FILE_BYTES:
            raise UserError(f"{source} is {size} bytes; an image may have at most {MAX_FILE_BYTES}")
    return files[RELATIVE].str.split("/", n=1).str[0]


def load_rows(data: TrainingData) -> ImageRows:
    train = data.train
    labels = folder_labels(train)
    names = sorted(set(labels))
    if len(names) < 2:
        raise UserError(
            f"the train channel has one label folder ({names[0]!r}); a classifier needs two "
            f"or more: {LAYOUT}"
        )
    if len(train) < MIN_IMAGES:
        raise UserError(
            f"the train channel has {len(train)} images; the image classifier needs at least "
            f"{MIN_IMAGES}"
        )
    images = Images(
        train[PATH].tolist(), encode_labels(labels, names, "train"), train[SOURCE].tolist()
    )
    if data.validation is not None:
        val = data.validation
        val_labels = encode_labels(folder_labels(val), names, "validation")
        return ImageRows(
            names,
            images,
            Images(val[PATH].tolist(), val_labels, val[SOURCE].tolist()),
            "channel",
        )
    tr, va, validation = held_out(data, len(images.labels), images.labels)
    return ImageRows(names, images.take(tr), images.take(va), validation)
