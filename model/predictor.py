"""The Flask app: HTTP routes only. The work is in sagemaker_platform.service."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.service import Service

log = logging.getLogger("serve")

# gunicorn's convention for "this worker cannot boot": the master stops the server,
# so `serve` exits non-zero and SageMaker replaces the container.
WORKER_BOOT_ERROR = 3
# Any other non-zero exit: the master logs it and forks a fresh worker in its place.
WORKER_STUCK = 1


def _replace_worker(exc: BaseException) -> None:
    """A forward pass is stuck on its native thread, where gunicorn's timeout cannot see
    it; its requests have had their 504s. Exit, and let gunicorn fork a new worker."""
    log.error("replacing this worker (pid %d): %s", os.getpid(), exc)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(WORKER_STUCK)


app = Flask(__name__)
# Routes take no OPTIONS (no browser calls them): Flask's automatic answer would be an
# empty text/html 200, not the JSON every other answer is; it is a JSON 405 instead.
service = Service.from_env(
    on_load_error=lambda exc: os._exit(WORKER_BOOT_ERROR), on_stuck=_replace_worker
)
app.config["MAX_CONTENT_LENGTH"] = service.max_payload_bytes


def _json_error(status: int, message: str) -> Response:
    from json import dumps

    return Response(dumps({"error": message}), status=status, mimetype="application/json")


@app.get("/ping", provide_automatic_options=False)
def ping() -> Response:
    if service.healthy():
        return Response("{}", status=200, mimetype="application/json")
    return _json_error(503, service.engine.not_ready_reason)


@app.post("/invocations", provide_automatic_options=False)
def invocations() -> Response:
    body, content_type = service.invoke(
        request.get_data(cache=False),
        request.headers.get("Content-Type"),
        request.headers.get("Accept"),
        request.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
    )
    return Response(body, status=200, mimetype=content_type)


@app.get("/execution-parameters", provide_automatic_options=False)
def execution_parameters() -> Response:
    return app.json.response(service.execution_parameters())


@app.errorhandler(HTTPError)
def known_error(exc: HTTPError) -> Response:
    log.warning("request rejected status=%d reason=%s", exc.status, exc.message)
    return _json_error(exc.status, exc.message)


@app.errorhandler(HTTPException)
def routing_error(exc: HTTPException) -> Response:  # 404, 405, 413 from werkzeug
    return _json_error(exc.code or 400, exc.description or exc.name)


@app.errorhandler(Exception)
def unexpected_error(exc: Exception) -> Response:
    log.exception("request failed")
    return _json_error(500, "internal error; see the server log")
