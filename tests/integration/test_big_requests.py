"""A worker under big requests: a large body is decoded, and a large answer written, on
a native thread, not on the worker's event loop, so /ping still answers at once (on the
loop, four requests of big images held it for seconds, past SageMaker's health check);
and past its memory budget a worker refuses a request with a 429 before reading it."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import numpy as np
import requests
from PIL import Image

from tests import helpers


def big_images_body() -> bytes:
    """Four 4096 x 4096 PNGs in 300 KB: 0.67 s of decoding on this machine."""
    pixels = np.zeros((4096, 4096, 3), np.uint8)
    pixels[::7, ::5] = 255
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, "PNG")
    return json.dumps({"instances": [base64.b64encode(png.getvalue()).decode()] * 4}).encode()


def test_ping_answers_while_big_bodies_decode(trained_plugins):
    body = big_images_body()
    env = {"MODEL_SERVER_WORKERS": "1"}
    with helpers.Server(trained_plugins["image_classifier"], env=env) as server:
        server.wait_ready()
        answers: list[int] = []

        def send() -> None:
            r = requests.post(
                server.url + "/invocations",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            answers.append(r.status_code)

        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        slowest = 0.0
        while any(s.is_alive() for s in senders):
            started = time.monotonic()
            assert requests.get(server.url + "/ping", timeout=30).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)
        for sender in senders:
            sender.join()
        assert answers == [200] * 4, server.output()[-3000:]
        # On the loop the four decodes (2.7 s of work) held /ping for 2 s and more.
        assert slowest < 0.5, f"/ping took {slowest:.2f} s while the bodies decoded"


SLOW_ANSWERS = '''
"""A plug-in whose answer to 64 records or more takes 1.5 s of Python to write."""
import time

from sagemaker_platform.plugin import Plugin


class SlowAnswers(Plugin):
    name = "slow_answers"

    def load(self, model_dir, runtime):
        return None

    def predict(self, model, records):
        return [0.0] * len(records)

    def encode(self, model, records, outputs, accept, options):
        if len(records) >= 64:
            end = time.perf_counter() + 1.5
            while time.perf_counter() < end:  # Python's own work: it holds the lock
                pass
        return super().encode(model, records, outputs, accept, options)


plugin = SlowAnswers()
'''


def test_ping_answers_while_a_big_answer_is_written(tmp_path):
    """An answer's cost is its records times what each holds (10,000 records of 1,000
    class probabilities took 8 s): one of 64 records or more is written off the loop."""
    import torch

    from sagemaker_platform import artifacts

    package = tmp_path / "plugins" / "slow_answers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SLOW_ANSWERS)
    (package / "SAGEMAKER_PLUGIN").write_text("# a test's plug-in\n")
    model_dir = tmp_path / "opt_ml" / "model"
    model_dir.mkdir(parents=True)
    artifacts.write_manifest(model_dir, "slow_answers", "slow_answers")
    torch.save({"state_dict": {}}, model_dir / artifacts.CHECKPOINT)
    env = {"MODEL_SERVER_WORKERS": "1", "PYTHONPATH": str(tmp_path / "plugins")}
    with helpers.Server(tmp_path / "opt_ml", env=env) as server:
        server.wait_ready()
        answers: list[int] = []
        sender = threading.Thread(
            target=lambda: answers.append(
                requests.post(server.url + "/invocations", json=[1] * 100, timeout=60).status_code
            )
        )
        sender.start()
        slowest = 0.0
        while sender.is_alive():
            started = time.monotonic()
            assert requests.get(server.url + "/ping", timeout=30).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)
        sender.join()
        assert answers == [200], server.output()[-3000:]
        assert slowest < 0.5, f"/ping took {slowest:.2f} s while the answer was written"


def test_past_its_budget_a_worker_answers_429_before_reading_the_body(trained_plugins):
    """A burst of big requests held by one worker got it killed for memory (30 MB for
    each 5.6 MB body; 60 at once, 2 GB). Past MODEL_SERVER_MAX_INFLIGHT_MB a request is
    a JSON 429; the one in flight is answered, and the next after it is taken."""
    body = big_images_body()  # 300 KB, 0.67 s of decoding: long enough to overlap
    env = {"MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_MAX_INFLIGHT_MB": "0.5"}
    with helpers.Server(trained_plugins["image_classifier"], env=env) as server:
        server.wait_ready()

        def post() -> requests.Response:
            return requests.post(
                server.url + "/invocations",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )

        first: list[requests.Response] = []
        sender = threading.Thread(target=lambda: first.append(post()))
        sender.start()
        time.sleep(0.3)  # the first is decoding
        refused = post()
        sender.join()
        assert first[0].status_code == 200, first[0].text[:300]
        assert refused.status_code == 429, refused.text[:300]
        assert refused.headers["Content-Type"] == "application/json"
        assert "MODEL_SERVER_MAX_INFLIGHT_MB" in refused.json()["error"]
        assert post().status_code == 200  # held nothing again
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
