"""Images that cost far more than their bytes: a progressive JPEG of thousands of scans
(each a pass over every pixel: 90,000 scans in 3 MB froze a worker for 123 s), and a
request of many tiny images (each becomes float32 [3, size, size]: 10,000 one-pixel PNGs
in 1 MB held 6 GB at size 224). Each is refused before the work, naming the file or
the record in training's and serving's usual words."""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from plugins.image_classifier import codecs, image
from plugins.image_classifier.data import Images
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.errors import UserError

JSON, JPEG = "application/json", "image/jpeg"


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def progressive_jpeg(scans: int) -> bytes:
    """A grey 128x128 progressive JPEG of `scans` scans: one of the DC coefficients, then
    empty scans of the AC ones, each a 2-byte run of end-of-bands over all 256 blocks
    (the reviewer's attack, small enough to decode in a test when it is not refused)."""
    side = 128
    table = bytes(64 * [1])
    huffman_dc = b"\x00" + bytes([1] + 15 * [0]) + b"\x00"  # one code: category 0
    huffman_ac = b"\x10" + bytes([1] + 15 * [0]) + b"\x80"  # one code: EOB run of 2**8
    head = (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + table)
        + segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
        + segment(0xC4, huffman_dc)
        + segment(0xC4, huffman_ac)
    )
    dc = segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + bytes(256 // 8)  # a '0' per block
    ac = segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + b"\x00\x7f"  # EOB8, run bits 0
    return head + dc + ac * (scans - 1) + b"\xff\xd9"


def png_of(width: int, height: int, info: PngImagePlugin.PngInfo | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 99, 199)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- a JPEG of many scans ----------------------------------------------------------------
def test_a_jpeg_of_more_scans_than_the_limit_is_refused_before_it_is_decoded():
    at_limit = progressive_jpeg(image.MAX_JPEG_SCANS)
    assert image.pixels(at_limit, 32).shape == (3, 32, 32)  # the same file, one scan fewer
    with pytest.raises(image.ImageError) as raised:
        image.pixels(progressive_jpeg(image.MAX_JPEG_SCANS + 1), 32)
    assert str(raised.value) == f"is a JPEG of 101 scans; at most {image.MAX_JPEG_SCANS}"


def test_a_progressive_jpeg_as_cameras_and_pillow_write_it_is_well_under_the_limit():
    y, x = np.mgrid[0:240, 0:320]
    photo = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(photo).save(out, format="JPEG", progressive=True, quality=95)
    assert 1 < image.jpeg_scans(out.getvalue()) <= 12
    assert image.pixels(out.getvalue(), 32).shape == (3, 32, 32)


def test_scan_markers_count_only_in_a_jpeg():
    """A PNG may hold the bytes FF DA anywhere (here in a text chunk): it is no JPEG."""
    info = PngImagePlugin.PngInfo()
    info.add(b"tEXt", b"note\x00" + b"\xff\xda" * 500)
    data = png_of(8, 8, info)
    assert data.count(image.START_OF_SCAN) == 500 and image.jpeg_scans(data) == 0
    assert image.pixels(data, 8).shape == (3, 8, 8)


def test_a_request_of_a_many_scan_jpeg_is_a_400_naming_the_record():
    many = progressive_jpeg(5000)
    with pytest.raises(HTTPError) as raised:
        codecs.decode(many, JPEG, 32)
    assert (raised.value.status, raised.value.message) == (
        400,
        "body is a JPEG of 5000 scans; at most 100",
    )
    body = json.dumps({"instances": [b64(png_of(4, 4)), {"image": b64(many)}]}).encode()
    with pytest.raises(HTTPError) as raised:
        codecs.decode(body, JSON, 32)
    assert raised.value.status == 400
    assert raised.value.message.startswith("instances[1].image is a JPEG of 5000 scans")


def test_a_training_file_of_many_scans_fails_the_job_naming_it(tmp_path):
    from plugins.image_classifier.lightning_module import ImageFiles

    path = tmp_path / "many.jpg"
    path.write_bytes(progressive_jpeg(5000))
    files = ImageFiles(Images([str(path)], np.array([0]), ["train/cat/many.jpg"]), 32)
    with pytest.raises(UserError) as raised:
        files[0]
    assert str(raised.value) == "train/cat/many.jpg is a JPEG of 5000 scans; at most 100"


# --- many tiny images ------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 16])
def test_each_image_costs_the_request_at_least_its_size_squared(monkeypatch, size):
    """One-pixel PNGs each become float32 [3, size, size]: the budget is charged that, so
    the request holds at most 12 bytes per pixel of the budget, whatever its images."""
    budget = 1000
    monkeypatch.setattr(codecs, "MAX_REQUEST_PIXELS", budget)
    fits = budget // size**2
    one = b64(png_of(1, 1))
    records = codecs.decode(json.dumps([one] * fits).encode(), JSON, size)
    assert len(records) == fits
    assert sum(r.pixels.nbytes for r in records) <= 12 * budget
    with pytest.raises(HTTPError) as raised:
        codecs.decode(json.dumps([one] * (fits + 1)).encode(), JSON, size)
    assert raised.value.status == 413
    assert f"(each counts as at least {size}x{size}," in raised.value.message


def test_the_image_past_the_budget_is_refused_before_it_is_decoded(monkeypatch):
    monkeypatch.setattr(codecs, "MAX_REQUEST_PIXELS", 3 * 8 * 8)
    one = b64(png_of(1, 1))
    with pytest.raises(HTTPError) as raised:  # not the 400 its bytes would earn
        codecs.decode(json.dumps([one, one, one, b64(b"not an image")]).encode(), JSON, 8)
    assert raised.value.status == 413


def test_a_batch_of_64_images_at_size_224_fits_the_real_budget():
    one = b64(png_of(32, 24))
    records = codecs.decode(json.dumps([one] * 64).encode(), JSON, 224)
    assert len(records) == 64 and records[0].pixels.shape == (3, 224, 224)
    assert codecs.MAX_REQUEST_PIXELS // 224**2 == 1337  # images of the largest request


def test_an_id_that_is_a_structure_is_a_400_before_its_image_is_decoded():
    body = json.dumps({"instances": [{"image": b64(png_of(4, 4)), "id": [[1]]}]}).encode()
    with pytest.raises(HTTPError) as err:
        codecs.decode(body, JSON, 8)
    assert err.value.status == 400
    assert err.value.message == "instances[0].id is a JSON list; an id is a string or a number"
