"""The image classifier's sample data and requests: the demo, and the platform tests
that run once per plug-in, use them.

Small pictures of one shape each (circle, square, triangle, cross), labelled by the
shape, in the ImageFolder layout a channel of images has in S3:

    train/circle/0000.png  train/cross/0001.png  ...

Drawn from a seed: a shape of random size, place and colour on a background of another
colour, with noise; the same set on every machine, no copied data, and classes of
unequal size, as real ones are.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

# The demo's hyperparameters: seconds on a laptop CPU (the tests train 2 epochs).
HYPERPARAMETERS = {
    "image_size": "32",
    "width": "8",
    "epochs": "10",
    "early_stopping_patience": "3",
    "batch_size": "16",
}
# What the platform tests need of this plug-in: a job for the SIGTERM test with epochs
# long enough to stop in the middle of one (a step takes a few milliseconds).
TEST_SIZES = {"sigterm_rows": 800}

SHAPES = ("circle", "square", "triangle", "cross")
_WEIGHTS = (0.3, 0.3, 0.25, 0.15)
SIDE = 32  # pixels of the sample images


def draw(shape: str, rng) -> bytes:
    """One PNG of `shape`, from the numpy Generator `rng`."""
    import numpy as np
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    colour = tuple(int((b + rng.integers(96, 160)) % 256) for b in background)
    img = Image.new("RGB", (SIDE, SIDE), background)
    pen = ImageDraw.Draw(img)
    r = float(rng.uniform(6, 13))
    cx, cy = (float(v) for v in rng.uniform(r + 1, SIDE - r - 1, 2))
    if shape == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        w = max(2.0, r / 3)
        pen.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
        pen.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
    noisy = np.asarray(img, dtype=np.int16) + rng.integers(-20, 21, (SIDE, SIDE, 3))
    out = io.BytesIO()
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


def write_data(channel: Path, n: int, seed: int) -> Path:
    """`n` labelled PNGs in `channel`/<shape>/<index>.png."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.choice(len(SHAPES), size=n, p=_WEIGHTS)
    for i, label in enumerate(labels):
        folder = channel / SHAPES[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.png").write_bytes(draw(SHAPES[label], rng))
    return channel


def _requests() -> tuple[list[bytes], bytes]:
    """Three sample images (a circle, a square, a cross) and the square as a JPEG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    images = [draw(shape, rng) for shape in ("circle", "square", "cross")]
    out = io.BytesIO()
    Image.open(io.BytesIO(images[1])).save(out, format="JPEG", quality=90)
    return images, out.getvalue()


_IMAGES, _JPEG = _requests()
_B64 = [base64.b64encode(png).decode() for png in _IMAGES]
# Content type -> a valid request: three records in JSON and JSON Lines; one image (one
# record) in each image type. The JSON's first record is the image/png body.
PAYLOADS = {
    "application/json": json.dumps({"instances": [{"image": b} for b in _B64]}).encode(),
    "application/jsonlines": "".join(json.dumps({"image": b}) + "\n" for b in _B64).encode(),
    "image/png": _IMAGES[0],
    "image/jpeg": _JPEG,
    "application/x-image": _IMAGES[2],
}
