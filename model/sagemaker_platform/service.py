"""What the HTTP routes do, as plain functions: decode, predict, encode.

One `Service` per gunicorn worker. It starts loading the plug-in's model in the
background at construction, answers /ping 503 until the model is loaded and warmed up,
and turns request bodies into responses through the plug-in's `decode` and `encode`,
around a `predict` that the batching engine shares between concurrent requests.
Errors that know their status are `HTTPError`s; the Flask layer only maps them to
responses.

A forward pass still running MODEL_SERVER_TIMEOUT seconds after it started makes the
engine give up: its requests get 504, then `on_stuck` runs (the server exits the worker
so that gunicorn forks a fresh one).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import codecs, contract, native, registry
from .artifacts import first_line
from .batching import BatchEngine, NotReady, Stuck
from .codecs import HTTPError
from .config import ServeConfig, serve_config_from_env
from .errors import UserError
from .plugin import Plugin
from .runtime import Runtime

log = logging.getLogger("serve")

# A body this large is decoded off gevent's event loop (`Service._decode`): four PNGs of
# 4096 x 4096 (300 KB) took 0.67 s to decode, and on the loop each such request held up
# /ping and every other request that long. A smaller one is decoded in place: handing it
# to a thread and back costs about 0.1 ms, a share of a small request's time.
DECODE_OFF_LOOP_BYTES = 64 * 1024
# An answer of this many records is encoded off the loop too: its cost is records x what
# each answer holds (10,000 records of 1,000 class probabilities took 8 s to write).
ENCODE_OFF_LOOP_RECORDS = 64

T = TypeVar("T")


def _off_loop(fn: Callable[[], T], heavy: bool) -> T:
    """`fn()`; when `heavy`, on one of gevent's native threads, so that /ping and the
    other requests go on being answered meanwhile. The request's context (contextvars)
    goes with it: a new thread starts with an empty one."""
    if not heavy or not native.gevent_active():
        return fn()
    import gevent

    return gevent.get_hub().threadpool.apply(contextvars.copy_context().run, (fn,))


class LoadedModel:
    """A plug-in's model as the batching engine runs it: every call inside the
    runtime's `computing()`, which shares the CPU cores between workers."""

    def __init__(self, plugin: Plugin, model: Any, runtime: Runtime):
        self.plugin, self.model, self.runtime = plugin, model, runtime

    def predict(self, records: Sequence[Any]) -> Sequence[Any]:
        with self.runtime.computing():
            try:
                return self.plugin.predict(self.model, records)
            except Exception:
                raise
            except BaseException as exc:
                # A Rust library's panic (pyo3's PanicException: tokenizers past its regex
                # engine's limits) is no Exception; answered as one, not as a server fault.
                if type(exc).__name__ != "PanicException":
                    raise
                raise RuntimeError(f"the plug-in's predict panicked: {first_line(exc)}") from None

    def warm_up(self) -> None:
        """The plug-in's `warm_up`, then its sample request through the path a request
        takes, so that /ping says ready only for a model that answers."""
        with self.runtime.computing():
            self.plugin.warm_up(self.model)
        sample = self.plugin.sample_request(self.model)
        if sample is not None:
            self.answer_sample(*sample)

    def answer_sample(self, body: bytes, content_type: str) -> None:
        """`body` decoded, predicted (as the batching engine runs it) and encoded in every
        Accept type the plug-in writes; a `UserError` saying where it failed, for the
        worker's one-line boot failure."""
        plugin, model = self.plugin, self.model
        step = "decode"
        try:
            kind = codecs.check_content_type(content_type, plugin.content_types)
            records = plugin.decode(model, body, kind, {})
            if not records:
                raise HTTPError(400, "the request holds no records")
            step = "predict"
            outputs = self.predict(records)
            if len(outputs) != len(records):
                raise RuntimeError(f"{len(outputs)} outputs for {len(records)} records")
            outputs = outputs[0 : len(records)]  # the engine's slice for one request
            for accept in plugin.accept_types:
                step = f"encode ({accept})"
                answer = plugin.encode(model, records, outputs, accept, {})
                if not isinstance(answer, str | bytes) or not answer:
                    raise RuntimeError(f"an answer of {type(answer).__name__} {answer!r:.40}")
        except HTTPError as exc:
            raise UserError(
                f"warm-up: the plug-in's sample request got {exc.status} at {step}: {exc.message}"
            ) from exc
        except Exception as exc:
            raise UserError(
                f"warm-up: the plug-in's sample request failed at {step}: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from exc


class Invocations:
    """What an endpoint does with a request, whoever holds the model it names: the
    payload limit, the plug-in's decode (off the loop when large), the batching engine's
    predict within the timeout, the plug-in's encode. `Service` holds one model;
    `multimodel_service.MultiModelService` many, and names the one a request targets."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.max_payload_bytes = int(cfg.max_payload_mb * 1024 * 1024)

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        target: tuple[Plugin, BatchEngine] | None = None,
        deadline: float | None = None,
    ) -> tuple[str | bytes, str]:
        """(response body, its content type) for one request to `target` (a plug-in and
        the engine that runs its model; a one-model service's own by default), within
        MODEL_SERVER_TIMEOUT (counted from `deadline`'s start when the caller waited).
        The caller passes `body` straight in: no frame of its keeps it (see `del body`)."""
        plugin, engine = target or self.model()
        answer_type = codecs.choose_accept(accept, plugin.accept_types)  # 406 before any work
        if len(body) > self.max_payload_bytes:
            raise HTTPError(413, f"body exceeds {self.cfg.max_payload_mb:g} MB")
        kind = codecs.check_content_type(content_type, plugin.content_types)
        if not body:
            raise HTTPError(400, "request body is empty")
        options = codecs.parse_options(custom_attributes)
        deadline = deadline or time.monotonic() + self.cfg.timeout
        try:
            # decode checks records against the model: a request that arrives while the
            # model loads (a worker gunicorn just replaced) waits for it, within the timeout
            model = engine.loaded(timeout=max(0.0, deadline - time.monotonic())).model
            # The platform's parsing helpers count records against the limit as they
            # parse (`codecs.request_limits`): a body of millions of tiny rows is refused
            # before they are built; the check after is for plug-ins that parse alone.
            records = self._decode(plugin, model, body, kind, options)
            # The records hold what the body said: let the body go (the caller passed
            # it straight in, so this is its last reference) before the forward pass
            # and the answer, which on an async endpoint's 1 GB body is a copy saved.
            del body
            if not records:
                raise HTTPError(400, "the request holds no records")
            codecs.check_records(len(records), self.cfg.max_records)
            remaining = max(0.0, deadline - time.monotonic())
            try:
                outputs = engine.predict(records, timeout=remaining)
            except Stuck:
                raise
            except TimeoutError:  # this request's time ran out (not a stuck pass)
                raise HTTPError(
                    504,
                    f"prediction of {len(records):,} records took longer than "
                    f"{self.cfg.timeout} s; send fewer records per request",
                ) from None
        except NotReady as exc:
            raise HTTPError(503, f"{exc}; retry shortly") from None
        except Stuck:
            raise HTTPError(
                504,
                f"prediction took longer than {self.cfg.timeout} s; this worker is being replaced",
            ) from None
        except TimeoutError:
            raise HTTPError(504, f"prediction took longer than {self.cfg.timeout} s") from None
        answer = _off_loop(
            lambda: plugin.encode(model, records, outputs, answer_type, options),
            len(records) >= ENCODE_OFF_LOOP_RECORDS,
        )
        return answer, answer_type

    def healthy(self) -> bool:
        """/ping: up, whatever the models do (a one-model service: once its model is)."""
        return True

    def not_ready_reason(self) -> str:
        """/ping's 503 message when `healthy` says no."""
        return "not ready"

    def model(self) -> tuple[Plugin, BatchEngine]:
        """The model a request names no other of: a one-model service's."""
        raise HTTPError(404, "this endpoint serves many models: name the one to invoke")

    def _decode(
        self, plugin: Plugin, model: Any, body: bytes, kind: str, options: dict[str, str]
    ) -> Sequence[Any]:
        """The plug-in's `decode` within the request's limits (`codecs.request_limits`:
        the record limit, one record a line under batch transform); a body of at least
        DECODE_OFF_LOOP_BYTES off the event loop (`_off_loop`)."""

        def run() -> Sequence[Any]:
            # batch transform splits its input at newlines: each line is one record there
            with codecs.request_limits(self.cfg.max_records, self.cfg.batch):
                return plugin.decode(model, body, kind, options)

        return _off_loop(run, len(body) >= DECODE_OFF_LOOP_BYTES)

    # --- /execution-parameters -----------------------------------------------------------
    def execution_parameters(self) -> dict:
        """Batch transform's limits, matching what this server really accepts."""
        concurrent = self.cfg.max_concurrent_transforms or max(1, self.cfg.workers)
        return {
            "MaxConcurrentTransforms": concurrent,
            "BatchStrategy": self.cfg.batch_strategy,
            "MaxPayloadInMB": max(1, int(self.cfg.max_payload_mb)),
        }


class Service(Invocations):
    """The routes' work for one model: it starts loading the plug-in's model in the
    background at construction, and /ping says 503 until it is loaded and warmed up."""

    def __init__(
        self,
        cfg: ServeConfig,
        model_dir: Path,
        on_load_error: Callable[[BaseException], None] | None = None,
        on_stuck: Callable[[BaseException], None] | None = None,
        plugin: Plugin | None = None,
    ):
        super().__init__(cfg)
        self.plugin = plugin or registry.plugin_for(model_dir)

        def load() -> LoadedModel:
            runtime = Runtime.for_worker(cfg)
            return LoadedModel(self.plugin, self.plugin.load(model_dir, runtime), runtime)

        self.engine = BatchEngine(
            load,
            cfg.max_batch_size,
            cfg.max_batch_delay_ms / 1000.0,
            on_load_error,
            stuck_after_s=cfg.timeout,
            on_stuck=on_stuck,
        )

    @classmethod
    def from_env(cls, on_load_error=None, on_stuck=None) -> Service:
        return cls(serve_config_from_env(), contract.model_dir(), on_load_error, on_stuck)

    # --- /ping ---------------------------------------------------------------------------
    def healthy(self) -> bool:
        return self.engine.ready

    def not_ready_reason(self) -> str:
        return self.engine.not_ready_reason

    def model(self) -> tuple[Plugin, BatchEngine]:
        return self.plugin, self.engine
