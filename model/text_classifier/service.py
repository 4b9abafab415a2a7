"""What the HTTP routes do, as plain functions: decode, predict, encode.

One `Service` per gunicorn worker. It starts loading the model in the background at
construction, answers /ping 503 until the model is loaded and warmed up, and turns
request bodies into responses through `codecs`. Errors that know their status are
`HTTPError`s; the Flask layer only maps them to responses.

A forward pass still running MODEL_SERVER_TIMEOUT seconds after it started makes the
engine give up: its requests get 504, then `on_stuck` runs (the server exits the worker
so that gunicorn forks a fresh one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from . import codecs, contract, cores
from .batching import BatchEngine, NotReady, Stuck
from .codecs import HTTPError
from .config import ServeConfig, serve_config_from_env

log = logging.getLogger("serve")


class Service:
    def __init__(
        self,
        cfg: ServeConfig,
        model_dir: Path,
        on_load_error: Callable[[BaseException], None] | None = None,
        on_stuck: Callable[[BaseException], None] | None = None,
    ):
        self.cfg = cfg
        self.max_payload_bytes = int(cfg.max_payload_mb * 1024 * 1024)

        def load():
            from .inference import Model

            return Model(
                model_dir,
                cfg.precision,
                cfg.device,
                cfg.threads,
                cfg.max_batch_size,
                cfg.backbone,
                cores.installed(),
            )

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

    # --- /invocations --------------------------------------------------------------------
    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[str, str]:
        """(response body, its content type) for one request."""
        answer_type = codecs.choose_accept(accept)  # 406 before any work
        if len(body) > self.max_payload_bytes:
            raise HTTPError(413, f"body exceeds {self.cfg.max_payload_mb:g} MB")
        texts = codecs.decode(body, content_type)
        try:
            probs = self.engine.predict(texts, timeout=self.cfg.timeout)
        except NotReady as exc:
            raise HTTPError(503, f"{exc}; retry shortly") from None
        except Stuck:
            raise HTTPError(
                504,
                f"prediction took longer than {self.cfg.timeout} s; this worker is being replaced",
            ) from None
        except TimeoutError:
            raise HTTPError(504, f"prediction took longer than {self.cfg.timeout} s") from None
        records = codecs.records(probs.tolist(), self.engine.model.labels)
        return codecs.encode(records, answer_type), answer_type

    # --- /execution-parameters -----------------------------------------------------------
    def execution_parameters(self) -> dict:
        """Batch transform's limits, matching what this server really accepts."""
        concurrent = self.cfg.max_concurrent_transforms or max(1, self.cfg.workers)
        return {
            "MaxConcurrentTransforms": concurrent,
            "BatchStrategy": self.cfg.batch_strategy,
            "MaxPayloadInMB": max(1, int(self.cfg.max_payload_mb)),
        }
