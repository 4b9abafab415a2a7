"""The image classifier end to end, beyond the shared platform tests: a channel of image
files (no table) trains, held out by label folder when there is no validation channel;
what is wrong in it fails the job naming the file; a PNG and its base64 in JSON get the
same answer from the server."""

from __future__ import annotations

import base64
import json
import re

import pytest
import requests

from tests import helpers

MODEL = "image_classifier"


def image_job(base, n_train: int = 96, n_val: int = 0, **extra: str):
    hp = {**helpers.test_hyperparameters(MODEL), "epochs": "1", **extra}
    return helpers.write_sample_job(base, hp, n_train=n_train, n_val=n_val, model=MODEL)


def test_a_channel_of_images_trains_on_the_rows_left_after_the_held_out_ones(base_dir, run_train):
    """No table anywhere; the held-out quarter is stratified by label folder, and
    metrics.json counts the images trained on, not the channel's."""
    image_job(base_dir, validation_fraction="0.25")
    result = run_train(base_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = dict(re.findall(r"(\w+)=(\S+)", re.search(r"INFO train: data (.*)", result.stdout)[1]))
    assert data["train_channel_rows"] == "96" and data["classes"] == "4"
    train_images, val_images = int(data["train_images"]), int(data["val_images"])
    assert train_images + val_images == 96 and val_images >= 4
    metrics = json.loads((base_dir / "output" / "data" / "metrics.json").read_text())
    assert (metrics["train_rows"], metrics["train_channel_rows"]) == (train_images, 96)
    assert metrics["num_examples"] == val_images
    assert json.loads((base_dir / "model" / "labels.json").read_text()) == [
        "circle",
        "cross",
        "square",
        "triangle",
    ]


def test_a_corrupt_image_in_the_channel_fails_the_job_naming_it(base_dir, run_train):
    image_job(base_dir)
    victim = sorted((base_dir / "input" / "data" / "train" / "square").iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:-100])  # cut short in its pixel data
    result = run_train(base_dir)
    assert result.returncode == 1, result.stdout[-3000:]
    reason = helpers.failure_reason(base_dir)
    assert reason.startswith(f"train/square/{victim.name} is not a readable PNG image"), reason
    assert "Traceback" not in reason


@pytest.mark.parametrize(
    "plant,reason",
    [
        (
            lambda train, outside: (train / "circle" / "x.png").symlink_to(outside),
            r"^train/circle/x\.png is a symbolic link to a file outside the channel",
        ),
        (
            lambda train, outside: (train / "manifest.csv").write_text("path,label\n"),
            r"^train/manifest\.csv is not in a label folder",
        ),
    ],
    ids=["link-out-of-the-channel", "a-table-beside-the-images"],
)
def test_what_is_not_an_image_of_the_channel_fails_before_training(
    base_dir, run_train, tmp_path, plant, reason
):
    image_job(base_dir)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    plant(base_dir / "input" / "data" / "train", secret)
    result = run_train(base_dir)
    assert result.returncode == 1
    assert re.search(reason, helpers.failure_reason(base_dir)), helpers.failure_reason(base_dir)
    assert "fit model=" not in result.stdout  # refused before the Trainer was built


def test_a_host_given_no_image_of_a_sharded_channel_says_so(base_dir, run_train):
    (base_dir / "input" / "data" / "train").mkdir(parents=True)
    helpers.write_hyperparameters(base_dir, {"model": MODEL})
    config = {"train": {"TrainingInputMode": "FastFile", "S3DistributionType": "ShardedByS3Key"}}
    (base_dir / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(config))
    result = run_train(base_dir)
    assert result.returncode == 1
    assert helpers.failure_reason(base_dir) == (
        "channel 'train' has no files (it is empty); the channel is ShardedByS3Key and this "
        "host got none of its S3 objects: give it at least as many objects as hosts"
    )


@pytest.mark.parametrize("plugin_name", [MODEL], indirect=True)
def test_a_png_and_its_base64_in_json_get_the_same_answer(plugin_name, plugin_server):
    """The same image as a PNG body, as the first record of a JSON request (with an id)
    and as a JSON Lines record: one answer, whatever carries it."""
    sample = helpers.sample(MODEL)
    png = sample.PAYLOADS["image/png"]
    url = plugin_server.url + "/invocations"
    alone = requests.post(url, data=png, headers={"Content-Type": "image/png"}).json()
    image = base64.b64encode(png).decode()
    body = {"instances": [{"image": image, "id": "p-1"}, sample.PAYLOADS["image/jpeg"].hex()]}
    r = requests.post(url, json=body)
    assert r.status_code == 400 and "instances[1] is not valid base64" in r.json()["error"]
    body["instances"][1] = image
    in_json = requests.post(url, json=body).json()["predictions"]
    lines = json.dumps({"image": image}) + "\n"
    in_lines = requests.post(
        url, data=lines, headers={"Content-Type": "application/jsonlines"}
    ).json()["predictions"]
    (expected,) = alone["predictions"]
    assert in_json[0].pop("id") == "p-1"
    for got in (in_json[0], in_json[1], in_lines[0]):
        assert got["label"] == expected["label"]
        assert got["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-4)
    r = requests.post(
        url,
        data=png,
        headers={"Content-Type": "image/png", "X-Amzn-SageMaker-Custom-Attributes": "top_k=9"},
    )
    assert r.status_code == 400 and "top_k" in r.json()["error"]
