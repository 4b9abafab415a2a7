"""The image classifier's requests and answers, built on the platform's codecs.

    image/png, image/jpeg,   the body is one image (PNG or JPEG, whichever the type
    application/x-image      says): one record, as SageMaker's built-in image
                             classifier takes it
    application/json         {"instances": [{"image": "<base64 PNG or JPEG>"}, ...]}
                             (or "inputs"), a list of such records, or one; a record may
                             be the base64 string alone, and may carry an "id"
    application/jsonlines    one record per line

Every image is checked as training checks its files (`image.open_image`: PNG or JPEG
only, at most image.MAX_PIXELS pixels, not truncated); a request's images together hold
at most MAX_REQUEST_PIXELS, each counted as at least the model's image_size squared.
Anything wrong is a 400 naming the record and the problem.

Answers: JSON (`{"predictions": [...]}`), JSON Lines or CSV, one per image, in order:
`{"label", "score", "probabilities"}` (`codecs.class_answer`, as the text classifier
answers), with "top_k" for the custom attribute `top_k=K` and the record's "id".
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, NamedTuple

from sagemaker_platform import codecs
from sagemaker_platform.codecs import CSV, JSON, JSONLINES, HTTPError

PNG, JPEG, X_IMAGE = "image/png", "image/jpeg", "application/x-image"
IMAGE_TYPES = (PNG, JPEG, X_IMAGE)
CONTENT_TYPES = (JSON, JSONLINES, *IMAGE_TYPES)
ACCEPT_TYPES = (JSON, JSONLINES, CSV)
IMAGE_KEY = "image"
# Pixels in one request, all images together: each image's decoded pixels (the work of
# decoding it), but at least size x size, as it is kept until the answer: float32
# [3, size, size], 12 bytes a pixel. So one request holds at most 768 MiB of network input
# at any image_size (10,000 one-pixel PNGs in a 1 MB body held 6 GB at size 224).
MAX_REQUEST_PIXELS = 64 * 1024 * 1024


class ImageRecord(NamedTuple):
    pixels: Any  # float32 [3, size, size]: the network's input
    id: Any = None  # echoed back in the answer when the request sent one


class _Budget:
    """The pixels a request may still spend (MAX_REQUEST_PIXELS)."""

    def __init__(self) -> None:
        self.left = MAX_REQUEST_PIXELS


def _over_budget(size: int) -> HTTPError:
    return HTTPError(
        413,
        f"the request's images hold more than {MAX_REQUEST_PIXELS} pixels in all (each "
        f"counts as at least {size}x{size}, the size it is resized to); send fewer or "
        "smaller images per request",
    )


def _image(data: bytes, size: int, where: str, budget: _Budget) -> Any:
    """One image's pixels for the network (`image.open_image`, then THE preprocessing
    function, as training does), or the 400 (413 over the request's budget) saying why.
    It costs the budget its decoded pixels, and at least size x size: what it becomes."""
    from . import image

    if budget.left < size * size:  # no image fits: refused before it is decoded
        raise _over_budget(size)
    try:
        img = image.open_image(data, size, limit=budget.left)
    except image.TooManyPixels as exc:
        if exc.pixels > image.MAX_PIXELS:
            raise HTTPError(400, f"{where} {exc}") from None
        raise _over_budget(size) from None
    except image.ImageError as exc:
        raise HTTPError(400, f"{where} {exc}") from None
    budget.left -= max(img.width * img.height, size * size)
    return image.preprocess(img, size)


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise HTTPError(400, f"{where} must be a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPError(400, f"{where} is not valid base64: {exc}") from None


def _record(value: Any, size: int, where: str, budget: _Budget) -> ImageRecord:
    if isinstance(value, dict):
        if IMAGE_KEY not in value:
            raise HTTPError(400, f"{where} is an object without an {IMAGE_KEY!r} field")
        data = _b64(value[IMAGE_KEY], f"{where}.{IMAGE_KEY}")
        record_id = codecs.record_id(value, where)
        return ImageRecord(_image(data, size, f"{where}.{IMAGE_KEY}", budget), record_id)
    return ImageRecord(_image(_b64(value, where), size, where, budget))


def decode(body: bytes, content_type: str, size: int) -> list[ImageRecord]:
    budget = _Budget()
    if content_type in IMAGE_TYPES:
        return [ImageRecord(_image(body, size, "body", budget))]
    if content_type == JSONLINES:
        values = codecs.jsonlines_values(body)
        return [_record(v, size, f"line {i + 1}", budget) for i, v in enumerate(values)]
    values = codecs.json_records(body)
    if not isinstance(values, list):
        return [_record(values, size, "inputs", budget)]
    return [_record(v, size, f"instances[{i}]", budget) for i, v in enumerate(values)]


# --- answers ---------------------------------------------------------------------------
def encode(
    records: Sequence[ImageRecord],
    probabilities: Sequence[Sequence[float]],
    labels: Sequence,
    accept: str,
    k: int | None = None,
) -> str:
    answers = [
        codecs.class_answer(row, labels, k, record.id)
        for record, row in zip(records, probabilities, strict=True)
    ]
    if accept == CSV:
        return codecs.answers_csv(answers)
    return codecs.encode_records(answers, accept)
