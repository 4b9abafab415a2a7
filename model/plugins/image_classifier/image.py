"""Bytes to pixels: the one decoding and preprocessing path that training and serving
share.

    pixels(data, size) -> float32 [3, size, size]

`data` is the bytes of a PNG or JPEG file: a file of the channel in training, a request
body (or a record's base64) in serving. Images are hostile input, so decoding is
bounded before any pixel is decompressed:

    formats      PNG and JPEG only (Pillow's other decoders are never tried)
    size         at most MAX_PIXELS pixels and MAX_SIDE on a side, read from the header;
                 Pillow's own decompression-bomb limit is set to the same figure and its
                 warning is an error
    scans        a JPEG of at most MAX_JPEG_SCANS scans, counted in its bytes
    truncated    a file cut short is an error, not a half-grey image
    anything     else Pillow raises on a broken file is `ImageError`, with its reason

Then the image is turned upright (EXIF orientation), converted to 8-bit RGB (grey,
16-bit grey, palette and CMYK images too; an alpha channel is dropped, leaving the colour
under it), resized to `size` x `size` (the aspect ratio is not kept) and scaled to about
-2..2 (`(x / 255 - 0.5) / 0.25`).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps

FORMATS = ("PNG", "JPEG")
SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_SIDE = 8192
MAX_PIXELS = 4096 * 4096  # 16.8 megapixels: 50 MB decoded
MAX_FILE_BYTES = 64 * 1024 * 1024  # a training file; requests have the payload limit
# A progressive JPEG is decoded in scans, and libjpeg passes over every block of the image
# once per scan, however few bytes the scan is: 90,000 scans of 26 bytes (a 3 MB file) at
# 4096x4096 took 123 s, past the worker's timeout, on the request's event loop. A camera's
# or Pillow's progressive JPEG has about 10; 100 bounds one at MAX_PIXELS to 0.13 s.
MAX_JPEG_SCANS = 100
JPEG_START = b"\xff\xd8\xff"  # how Pillow knows a JPEG (an MPO too: JPEG frames in a row)
# Each scan starts with this marker. Inside entropy-coded data a 0xFF byte is always
# followed by 0x00 or a restart marker (0xD0-0xD7), so counting it over the whole file is
# an upper bound on its scans (the markers of an EXIF thumbnail count too) in one pass.
START_OF_SCAN = b"\xff\xda"

# Set explicitly, not left to Pillow's default: Image.open refuses twice this many
# pixels itself, and warns above it, which is made an error here (never a log line).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False
warnings.simplefilter("error", Image.DecompressionBombWarning)


class ImageError(ValueError):
    """Bytes that are not a usable image; the message says why (no file or record name:
    the caller adds it)."""


class TooManyPixels(ImageError):
    """An image over the pixel limit it was opened with (`pixels`: its header's count)."""

    def __init__(self, message: str, pixels: int):
        super().__init__(message)
        self.pixels = pixels


def open_image(data: bytes, size: int | None = None, limit: int = MAX_PIXELS) -> Image.Image:
    """The decoded RGB image in `data`, checked before it is decompressed (at most
    `limit` pixels). With `size`, a JPEG decodes at the smallest of 1/2, 1/4 or 1/8
    scale that still covers `size` square (much less work for a photo that becomes
    64 x 64)."""
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.UnidentifiedImageError:
        raise ImageError(f"is not a PNG or JPEG image ({_kind(data)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"has more than {MAX_PIXELS} pixels") from None
    except Exception as exc:  # Pillow raises many kinds for a broken header
        raise ImageError(f"is not a readable PNG or JPEG image: {_reason(exc)}") from None
    with img:
        width, height = img.size
        if width < 1 or height < 1 or max(width, height) > MAX_SIDE:
            raise ImageError(f"is {width}x{height} pixels; at most {MAX_SIDE} on a side")
        if width * height > min(limit, MAX_PIXELS):
            raise TooManyPixels(
                f"is {width}x{height} pixels; at most {MAX_PIXELS} in all", width * height
            )
        scans = jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise ImageError(f"is a JPEG of {scans} scans; at most {MAX_JPEG_SCANS}")
        try:
            if size and img.format == "JPEG":
                img.draft("RGB", (size, size))
            img.load()
            return _rgb(ImageOps.exif_transpose(img))
        except Exception as exc:  # truncated, a bad chunk or CRC, an unknown mode...
            raise ImageError(f"is not a readable {img.format} image: {_reason(exc)}") from None


def jpeg_scans(data: bytes) -> int:
    """An upper bound on the scans of `data` if it is a JPEG (its start-of-scan markers),
    else 0: decoding time grows with scans x pixels, so they are counted before any is
    decoded (3 MB in ~1 ms)."""
    return data.count(START_OF_SCAN) if data.startswith(JPEG_START) else 0


def _rgb(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I"):  # 16-bit grey (PNG): its top 8 bits, not clipped at 255
        wide = np.asarray(img).astype(np.int64)
        img = Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8), "L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # what Pillow asks for, rather than a warning per image
    return img.convert("RGB")


def preprocess(img: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the network's input: float32 [3, size, size]. THE preprocessing
    function: training's Dataset and serving's decode both call it (through `pixels`)."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((x - 0.5) / 0.25).transpose(2, 0, 1))


def pixels(data: bytes, size: int) -> np.ndarray:
    """PNG or JPEG bytes -> the network's input; `ImageError` when they are not one."""
    return preprocess(open_image(data, size), size)


def read_file(path: str) -> bytes:
    """A training file's bytes, at most MAX_FILE_BYTES of them."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"is over {MAX_FILE_BYTES // 2**20} MB")
    return data


def encode_png(array: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (the sample data, warm-up)."""
    out = io.BytesIO()
    Image.fromarray(array, "RGB").save(out, format="PNG")
    return out.getvalue()


def _kind(data: bytes) -> str:
    if not data:
        return "no bytes"
    head = data[:12]
    if head.startswith((b"\x89PNG", b"\xff\xd8")):
        return "its header is broken"
    if head.startswith((b"GIF8", b"BM", b"II*\x00", b"MM\x00*")) or head[8:12] == b"WEBP":
        return "another image format"
    return f"starts with {data[:8]!r}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
