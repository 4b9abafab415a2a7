"""The image classifier's pieces without a server: the one decoding path (and what it
refuses), requests, the training layout's checks and the model directory's values."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plugins.image_classifier import artifacts, codecs, data, image, sample
from sagemaker_platform import channels
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.errors import UserError
from sagemaker_platform.plugin import TrainingData

JSON, JSONLINES, PNG = "application/json", "application/jsonlines", "image/png"


def encoded(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` and whose data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# --- the one path: bytes -> pixels ------------------------------------------------------
@pytest.mark.parametrize(
    "img,fmt",
    [
        (Image.new("RGB", (40, 30), (200, 10, 10)), "PNG"),
        (Image.new("L", (40, 30), 200), "PNG"),
        (Image.fromarray(np.full((30, 40), 200 * 256, np.uint16)), "PNG"),
        (Image.new("P", (40, 30), 3), "PNG"),
        (Image.new("RGBA", (40, 30), (200, 10, 10, 0)), "PNG"),
        (Image.new("RGB", (40, 30), (200, 10, 10)), "JPEG"),
        (Image.new("CMYK", (40, 30), (0, 200, 0, 0)), "JPEG"),
    ],
    ids=["rgb", "grey", "grey-16-bit", "palette", "alpha", "jpeg", "cmyk-jpeg"],
)
def test_every_kind_of_png_and_jpeg_becomes_rgb_pixels_of_the_size(img, fmt):
    x = image.pixels(encoded(img, fmt), 16)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert -2.0 <= x.min() <= x.max() <= 2.0


def test_a_16_bit_image_keeps_its_range_rather_than_clipping():
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    x = image.pixels(encoded(Image.fromarray(ramp)), 64)
    assert x.min() == pytest.approx(-2.0) and x.max() == pytest.approx(2.0)
    assert len(np.unique(x[0])) > 200  # not a wall of 255s


def test_exif_orientation_turns_the_image_upright():
    img = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    assert image.open_image(encoded(img, "JPEG", exif=exif)).size == (20, 40)


@pytest.mark.parametrize(
    "body,message",
    [
        (b"", "is not a PNG or JPEG image (no bytes)"),
        (b"plain text, not an image", "is not a PNG or JPEG image (starts with"),
        (encoded(Image.new("RGB", (8, 8)), "GIF"), "is not a PNG or JPEG image (another image"),
        (encoded(Image.new("RGB", (8, 8)), "BMP"), "is not a PNG or JPEG image (another image"),
        (encoded(Image.new("RGB", (8, 8)), "TIFF"), "is not a PNG or JPEG image (another image"),
        (png_header(0, 5), "is not a PNG or JPEG image (its header is broken)"),
        (png_header(20_000, 20_000), f"has more than {image.MAX_PIXELS} pixels"),
        (png_header(5000, 5000), "pixels"),
        (png_header(image.MAX_SIDE + 1, 10), f"pixels; at most {image.MAX_SIDE} on a side"),
        (png_header(64, 64), "is not a readable PNG image: "),
        (encoded(Image.new("RGB", (64, 64)), "JPEG")[:300], "is not a readable "),
        (encoded(Image.new("RGB", (64, 64)))[:-20], "is not a readable PNG image: "),
    ],
    ids=[
        "empty",
        "text",
        "gif",
        "bmp",
        "tiff",
        "zero-width",
        "bomb-400-megapixels",
        "bomb-25-megapixels",
        "too-wide",
        "no-pixel-data",
        "jpeg-cut-short",
        "png-cut-short",
    ],
)
def test_what_is_no_usable_image_is_an_image_error_saying_why(body, message):
    """Refused from the header alone where it can be: a bomb is never decompressed."""
    with pytest.raises(image.ImageError) as raised:
        image.pixels(body, 32)
    assert message in str(raised.value), str(raised.value)


def test_a_training_file_over_the_size_limit_is_not_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "MAX_FILE_BYTES", 1000)
    (tmp_path / "big.png").write_bytes(b"x" * 5000)
    with pytest.raises(image.ImageError, match="is over"):
        image.read_file(str(tmp_path / "big.png"))


# --- requests ----------------------------------------------------------------------------
def test_an_image_body_and_its_base64_in_json_decode_to_the_same_pixels():
    png = sample.PAYLOADS[PNG]
    (alone,) = codecs.decode(png, PNG, 32)
    from_json = codecs.decode(sample.PAYLOADS[JSON], JSON, 32)
    from_lines = codecs.decode(sample.PAYLOADS[JSONLINES], JSONLINES, 32)
    assert len(from_json) == len(from_lines) == 3
    assert np.array_equal(alone.pixels, from_json[0].pixels)
    assert np.array_equal(alone.pixels, from_lines[0].pixels)
    assert np.array_equal(image.pixels(png, 32), alone.pixels)  # as training decodes it


def test_json_records_may_be_bare_base64_and_carry_an_id():
    b64 = base64.b64encode(sample.PAYLOADS[PNG]).decode()
    body = json.dumps({"instances": [b64, {"image": b64, "id": "x-1"}]}).encode()
    records = codecs.decode(body, JSON, 32)
    assert [r.id for r in records] == [None, "x-1"]
    assert np.array_equal(records[0].pixels, records[1].pixels)
    (one,) = codecs.decode(json.dumps({"image": b64}).encode(), JSON, 32)
    assert one.id is None


@pytest.mark.parametrize(
    "body,content_type,message",
    [
        (b"GIF89a...", PNG, "body is not a PNG or JPEG image"),
        (b'{"instances": [{"img": "x"}]}', JSON, "instances[0] is an object without an 'image'"),
        (b'{"instances": [{"image": 5}]}', JSON, "instances[0].image must be a base64 string"),
        (b'{"instances": ["!!not base64!!"]}', JSON, "instances[0] is not valid base64"),
        (b'{"instances": ["aGVsbG8="]}', JSON, "instances[0] is not a PNG or JPEG image"),
        (b'{"image": "aGVsbG8="}\n[1]\n', JSONLINES, "line 1.image is not a PNG or JPEG image"),
    ],
    ids=["binary", "no-image-field", "not-a-string", "not-base64", "not-an-image", "jsonl"],
)
def test_a_bad_request_is_a_400_naming_the_record_and_the_problem(body, content_type, message):
    with pytest.raises(HTTPError) as raised:
        codecs.decode(body, content_type, 32)
    assert raised.value.status == 400 and message in raised.value.message, raised.value.message


def test_the_images_of_one_request_share_a_pixel_budget(monkeypatch):
    """Small PNGs that each decompress to many pixels: the request is a 413 once its
    images together pass the budget, before the one that would pass it is decoded."""
    monkeypatch.setattr(codecs, "MAX_REQUEST_PIXELS", 2500)
    one = base64.b64encode(encoded(Image.new("RGB", (32, 32)))).decode()  # 1024 pixels
    assert len(codecs.decode(json.dumps([one, one]).encode(), JSON, 8)) == 2
    with pytest.raises(HTTPError) as raised:
        codecs.decode(json.dumps([one, one, one]).encode(), JSON, 8)
    assert raised.value.status == 413 and "pixels in all" in raised.value.message


def test_answers_are_class_answers_one_per_image_in_every_accept():
    records = codecs.decode(sample.PAYLOADS[JSON], JSON, 32)
    probabilities = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]]
    labels = list(sample.SHAPES)
    answers = json.loads(codecs.encode(records, probabilities, labels, JSON, k=2))["predictions"]
    assert [a["label"] for a in answers] == ["circle", "square", "cross"]
    assert answers[0]["top_k"] == [
        {"label": "circle", "score": 0.7},
        {"label": "square", "score": 0.1},
    ]
    assert len(codecs.encode(records, probabilities, labels, "text/csv").splitlines()) == 3


# --- the training layout ------------------------------------------------------------------
def files_of(root: Path, names: dict[str, bytes]) -> pd.DataFrame:
    for name, body in names.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return channels.list_files(root)


def training_data(train: pd.DataFrame, validation: pd.DataFrame | None = None) -> TrainingData:
    return TrainingData(train=train, validation=validation, validation_fraction=0.25, seed=1)


def test_labels_are_the_folders_and_validation_is_held_out_stratified(tmp_path):
    sample.write_data(tmp_path / "train", 80, seed=3)
    rows = data.load_rows(training_data(channels.list_files(tmp_path / "train")))
    assert rows.names == sorted(sample.SHAPES)
    assert len(rows.train) + len(rows.val) == 80 and rows.validation == "split_0.25"
    assert set(rows.val.labels) == set(range(4))  # every class held out
    assert not set(rows.train.paths) & set(rows.val.paths)
    for path, label in zip(rows.val.paths, rows.val.labels, strict=True):
        assert Path(path).parent.name == rows.names[label]


@pytest.mark.parametrize(
    "names,message",
    [
        ({"a/1.png": b"x", "b/2.png": b"x", "3.png": b"x"}, "train/3.png is not in a label folder"),
        ({"a/1.png": b"x", "b/notes.txt": b"x"}, "train/b/notes.txt is not a .png, .jpg or .jpeg"),
        ({"a/1.png": b"x", "b/2.png": b""}, "train/b/2.png is empty"),
        ({f"a/{i}.png": b"x" for i in range(20)}, "has one label folder ('a')"),
        ({"a/1.png": b"x", "b/2.png": b"x"}, "has 2 images; the image classifier needs at least"),
    ],
    ids=["top-level-file", "not-an-image-name", "empty-file", "one-class", "too-few"],
)
def test_a_channel_that_is_not_images_in_label_folders_fails_naming_the_file(
    tmp_path, names, message
):
    with pytest.raises(UserError) as raised:
        data.load_rows(training_data(files_of(tmp_path / "train", names)))
    assert message in str(raised.value), str(raised.value)


def test_a_validation_label_training_never_saw_is_refused(tmp_path):
    train = files_of(tmp_path / "train", {f"{c}/{i}.png": b"x" for c in "ab" for i in range(6)})
    val = files_of(tmp_path / "validation", {"a/1.png": b"x", "zebra/1.png": b"x"})
    with pytest.raises(UserError, match=r"channel 'validation' has labels not in the training"):
        data.load_rows(training_data(train, val))


# --- the model directory: every value checked at load ----------------------------------
@pytest.fixture
def model_dir(tmp_path) -> Path:
    out = tmp_path / "model"
    network = {"num_classes": 3, "image_size": 32, "width": 8, "blocks": 4, "dropout": 0.1}
    artifacts.write_model_dir(out, ["a", "b", "c"], network)
    (out / "model.ckpt").write_bytes(b"weights")
    return out


def test_a_model_directory_it_wrote_reads_back(model_dir):
    spec = artifacts.read_spec(model_dir)
    assert spec.labels == ["a", "b", "c"] and spec.image_size == 32


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("image_size", "32", "network.json: image_size is '32', expected an integer from 8 to 512"),
        ("image_size", 32.0, "image_size is 32.0, expected an integer"),
        ("image_size", 100_000, "image_size is 100000, expected an integer from 8 to 512"),
        ("width", -5, "width is -5, expected an integer from 1 to 128"),
        ("width", True, "width is True, expected an integer"),
        ("blocks", [3], "blocks is [3], expected an integer"),
        ("blocks", 99, "blocks is 99, expected an integer from 1 to 5"),
        ("dropout", "0.1", "dropout is '0.1', expected a finite number from 0 to 0.9"),
        ("dropout", float("nan"), "dropout is nan, expected a finite number"),
        ("dropout", 10**400, "dropout is 1000"),
        ("num_classes", 4, "labels.json does not match network.json"),
        ("format_version", 2, "network.json has format 2, expected 1"),
        ("extra", 1, "network.json has other keys than expected ('extra')"),
        ("image_size", 8, "image_size=8 is too small for blocks=4"),
    ],
)
def test_a_hostile_value_in_network_json_is_refused_naming_it(model_dir, key, value, message):
    path = model_dir / "network.json"
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as raised:
        artifacts.read_spec(model_dir)
    assert message in str(raised.value), str(raised.value)
    assert str(raised.value).startswith("model directory is corrupt"), str(raised.value)


# --- what `make mutate` found no test reading ---------------------------------------------
def test_base64_with_a_character_outside_its_alphabet_is_refused_not_skipped():
    b64 = base64.b64encode(sample.PAYLOADS[PNG]).decode()
    body = json.dumps([b64[:8] + "*" + b64[8:]]).encode()
    with pytest.raises(HTTPError) as raised:
        codecs.decode(body, JSON, 32)
    assert raised.value.message.startswith("instances[0] is not valid base64")


def test_one_json_value_is_named_inputs_in_its_400():
    with pytest.raises(HTTPError) as raised:
        codecs.decode(b"5", JSON, 32)
    assert raised.value.message == "inputs must be a base64 string, got int"


def test_an_images_id_comes_back_in_its_answer_and_outputs_match_records_one_to_one():
    b64 = base64.b64encode(sample.PAYLOADS[PNG]).decode()
    records = codecs.decode(json.dumps([{"image": b64, "id": "x-1"}, b64]).encode(), JSON, 32)
    probabilities = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1]]
    labels = list(sample.SHAPES)
    answers = json.loads(codecs.encode(records, probabilities, labels, JSON))["predictions"]
    assert [a.get("id") for a in answers] == ["x-1", None]
    assert codecs.encode(records, probabilities, labels, "text/csv").startswith("x-1,circle,")
    with pytest.raises(ValueError):
        codecs.encode(records, probabilities[:1], labels, JSON)


def test_the_413_over_the_pixel_budget_says_what_to_send(monkeypatch):
    monkeypatch.setattr(codecs, "MAX_REQUEST_PIXELS", 1500)
    one = base64.b64encode(encoded(Image.new("RGB", (32, 32)))).decode()
    with pytest.raises(HTTPError) as raised:
        codecs.decode(json.dumps([one, one]).encode(), JSON, 8)
    assert raised.value.message == (
        "the request's images hold more than 1500 pixels in all (each counts as at least "
        "8x8, the size it is resized to); send fewer or smaller images per request"
    )
