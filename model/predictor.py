"""The Flask app: HTTP routes, and each body read whole within its timeout. The work is in
sagemaker_platform.service (one model) or sagemaker_platform.multimodel_service (a
multi-model endpoint's /models routes)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable

import gevent
from flask import Flask, Response, after_this_request, request
from werkzeug.exceptions import HTTPException

from sagemaker_platform import logs, native
from sagemaker_platform.codecs import HTTPError
from sagemaker_platform.config import serve_config_from_env
from sagemaker_platform.inflight import InFlight
from sagemaker_platform.inflight import default_budget_mb as default_inflight_mb
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


# gunicorn's gevent worker has patched this process before importing the app: give
# logging back the OS's locks before any model loads on an OS thread.
native.native_logging_locks()

app = Flask(__name__)
# Routes take no OPTIONS (no browser calls them): Flask's automatic answer would be an
# empty text/html 200, not the JSON every other answer is; it is a JSON 405 instead.
MULTI_MODEL = serve_config_from_env().mme
if MULTI_MODEL:
    from sagemaker_platform.multimodel_service import MultiModelService

    service = MultiModelService.from_env(on_stuck=_replace_worker)
else:
    service = Service.from_env(
        on_load_error=lambda exc: os._exit(WORKER_BOOT_ERROR), on_stuck=_replace_worker
    )
app.config["MAX_CONTENT_LENGTH"] = service.max_payload_bytes
# The request bodies this worker holds at once, against a memory budget (a 429 past it).
inflight = InFlight(
    int((service.cfg.max_inflight_mb or default_inflight_mb(service.cfg.workers)) * 2**20)
)


def _invoke(target: Callable[[], tuple] | None = None) -> Response:
    """This request through the service, held against `inflight` until its answer is
    built. The body is read first and passed straight in (no local keeps it: `invoke`
    lets it go before the forward pass); then `target` finds, or waits for, the model a
    multi-model endpoint's request names (its engine and the request's deadline)."""
    with inflight.admitted(request.content_length, service.max_payload_bytes):
        body, content_type = service.invoke(
            _body(),
            request.headers.get("Content-Type"),
            request.headers.get("Accept"),
            request.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            *(target() if target else ()),
        )
    return Response(body, status=200, mimetype=content_type)


def _json_error(status: int, message: str) -> Response:
    from json import dumps

    return Response(dumps({"error": message}), status=status, mimetype="application/json")


@app.get("/ping", provide_automatic_options=False)
def ping() -> Response:
    if service.healthy():
        return Response("{}", status=200, mimetype="application/json")
    return _json_error(503, service.not_ready_reason())


def _body() -> bytes:
    """The request body, whole within the mode's body timeout (`ServeConfig.body_timeout`),
    or a 408 that ends the connection. nginx streams /invocations bodies through as they
    come (it times only the gap between two reads), so a trickled body is cut off here."""
    seconds = service.cfg.body_timeout
    deadline = gevent.Timeout(seconds)
    deadline.start()
    try:
        return request.get_data(cache=False)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        sock = request.environ.get("gunicorn.socket")
        if sock is not None:

            @after_this_request
            def end_after(response: Response) -> Response:
                response.call_on_close(lambda: _end(sock))
                return response

        raise HTTPError(
            408, f"the request body took longer than {seconds:g} s to arrive; send it whole"
        ) from None
    finally:
        deadline.close()


def _end(sock: socket.socket) -> None:
    """Once a 408 is sent: take what nginx still sends of the body until it closes the
    connection, as it does once it has the answer (closed under its writes first, it
    would answer its own 502 instead), a second at most; then end the connection, which
    gunicorn would otherwise keep reading the body from, for the next request."""
    with contextlib.suppress(OSError), gevent.Timeout(1, False):
        while sock.recv(65536):
            pass
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


if not MULTI_MODEL:

    @app.post("/invocations", provide_automatic_options=False)
    def invocations() -> Response:
        return _invoke()

else:  # a multi-model endpoint: SageMaker's /models routes (multimodel_service)

    @app.post("/invocations", provide_automatic_options=False)
    def invocations() -> Response:
        raise HTTPError(
            404, "this is a multi-model endpoint: invoke a model with POST /models/<name>/invoke"
        )

    @app.post("/models", provide_automatic_options=False)
    def load_model() -> Response:
        return app.json.response(service.load(_body()))

    @app.get("/models", provide_automatic_options=False)
    def list_models() -> Response:
        return app.json.response(service.list(request.args))

    @app.get("/models/<name>", provide_automatic_options=False)
    def describe_model(name: str) -> Response:
        return app.json.response(service.describe(name))

    @app.delete("/models/<name>", provide_automatic_options=False)
    def unload_model(name: str) -> Response:
        return app.json.response(service.unload(name))

    @app.post("/models/<name>/invoke", provide_automatic_options=False)
    def invoke_model(name: str) -> Response:
        return _invoke(lambda: service.target(name))


@app.get("/execution-parameters", provide_automatic_options=False)
def execution_parameters() -> Response:
    return app.json.response(service.execution_parameters())


@app.errorhandler(HTTPError)
def known_error(exc: HTTPError) -> Response:
    name = (request.view_args or {}).get("name") if MULTI_MODEL else None
    if name is None:
        log.warning("request rejected status=%d reason=%s", exc.status, exc.message)
    else:  # which model, and the caller's TargetModel (both hostile: inert, cut short)
        target = request.headers.get("X-Amzn-SageMaker-Target-Model")
        named = {"target_model": target[:200]} if target else {}
        log.warning(
            "request rejected %s reason=%s",
            logs.kv(model=name[:200], **named, status=exc.status),
            exc.message,
        )
    return _json_error(exc.status, exc.message)


@app.errorhandler(HTTPException)
def routing_error(exc: HTTPException) -> Response:  # 404, 405, 413 from werkzeug
    return _json_error(exc.code or 400, exc.description or exc.name)


@app.errorhandler(Exception)
def unexpected_error(exc: Exception) -> Response:
    log.exception("request failed")
    return _json_error(500, "internal error; see the server log")
