"""A large body is decoded on a native thread, not on the worker's event loop: while a
worker decodes a few requests of big images, /ping still answers at once (on the loop,
four of them held it for seconds, past SageMaker's health check)."""

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
