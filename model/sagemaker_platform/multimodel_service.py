"""One worker of a multi-model endpoint: its copies of the listed models, and the routes'
work (load, list, describe, unload, invoke) as plain functions, like `service`.

Which worker loads what, and why. Every worker holds its own copy of every listed model,
as every worker holds the model of a single-model endpoint: a request for any model is
answered by whichever worker accepts it, with the same dynamic batching, and a worker
that dies takes no model with it. The worker that gets POST /models weighs the model
directory against the budget (a 507 before its files are checked), checks it, lists
the model as loading (`multimodel.Store`: the budget and 409 decided under one lock),
loads it, warms it up and answers its sample request, and only then
answers 200 and lists it as loaded. The other workers see the list move (a counter in
shared memory, read at each request and every POLL_S) and load it in the background, one
model at a time, most recently used first; a request that reaches a worker before its
copy is ready starts that load and waits for it, within MODEL_SERVER_TIMEOUT. A worker
that gunicorn forks in place of a dead one loads the listed models the same way, on
demand and in the background. DELETE unlists the model; each worker drops its copy at
its next look at the list (the requests it has queued for it are answered first).

One process holding the models for every worker would keep one copy in memory instead
of one per worker, but every request would then cross a process boundary twice, and its
death would take every model down: with MODEL_SERVER_WORKERS=1 a server holds exactly one
copy of each model, and a lone worker computes on every core (`cores`).

In one worker, forward passes of different models take turns (`SharedModel`): each
takes the worker's share of the cores, as the one model of a single-model worker does;
loads and warm-ups run beside them.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import artifacts, contract, logs, multimodel, native, registry
from .batching import BatchEngine
from .codecs import HTTPError
from .config import ServeConfig, serve_config_from_env
from .errors import UserError
from .multimodel import LOADED, STORE_ENV, Entry, Store, shown
from .plugin import Plugin
from .runtime import Runtime
from .service import Invocations, LoadedModel

log = logging.getLogger("serve")

POLL_S = 0.5  # how often an idle worker looks at the list
RETRY_S = 5.0  # a copy that failed to load in this worker is tried again after this
MAX_LOAD_BODY = 64 * 1024  # POST /models's JSON: a name and a path


def _native_rlock():
    """A lock of the OS, which the forward passes' native threads take. Under gevent's
    monkey-patching `threading.RLock`, even its saved original, is built on greenlet
    locks, which hang when OS threads contend for them: `_thread.RLock` is not."""
    return native.os_thread("RLock")()


class SharedModel(LoadedModel):
    """A model of a multi-model endpoint: its forward passes hold the worker's compute
    lock, so that two models' batches never compute at once in one worker. The batch
    engine's watchdog counts a batch's time from when it got the lock (`began`): a batch
    that waited for another model's is not stuck. A load and its warm-up (seconds, for a
    model loading in the background) do not take the lock, so that they never hold up
    the other models' requests; only the sample request's forward pass takes its turn."""

    def __init__(self, plugin: Plugin, model: Any, runtime: Runtime, lock):
        super().__init__(plugin, model, runtime)
        self.lock = lock
        self._began: float | None = None

    def began(self) -> float | None:
        return self._began

    def predict(self, records):
        self._began = None
        with self.lock:
            self._began = time.monotonic()
            return super().predict(records)


@dataclass
class Hosted:
    """This worker's copy of one listed model."""

    entry: Entry
    plugin: Plugin
    engine: BatchEngine | None = None
    requests: int = 0
    done: threading.Event = field(default_factory=threading.Event)  # listed or released
    outcome: str = ""  # "loaded", "failed" or "unloaded", once `done`


def _malloc_trim() -> None:
    """Hand the heap's free pages back to the system after a model is let go."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def load_error(name: str, exc: BaseException) -> HTTPError:
    """The answer to a POST /models whose load failed: 507 for memory, else a 400 that
    says why in one line (a broken or hostile model directory fails that model alone)."""
    if isinstance(exc, MemoryError):
        return HTTPError(507, f"not enough memory to load model {name!r}")
    why = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return HTTPError(400, f"model {name!r} failed to load: {artifacts.first_line(why)}")


class MultiModelService(Invocations):
    """The routes' work on a multi-model endpoint (see the module docstring)."""

    def __init__(
        self,
        cfg: ServeConfig,
        store: Store,
        on_stuck=None,
        models_root: Path | None = None,
    ):
        super().__init__(cfg)  # no model of its own: a request names one (`target`)
        self.store = store
        self.root = models_root or contract.models_dir()
        self.workers = max(1, cfg.workers)
        self.budget_mb = cfg.mme_memory_mb or multimodel.default_budget_mb(self.workers)
        self.hosted: dict[str, Hosted] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # load_id: (when, why)
        self._compute = _native_rlock()
        self._guard = threading.Lock()  # a name's copy is started once
        self._on_stuck = on_stuck
        self._seen = -1
        self._background: Hosted | None = None
        self._let_go = False
        threading.Thread(target=self._poll, name="models", daemon=True).start()

    @classmethod
    def from_env(cls, on_load_error=None, on_stuck=None) -> MultiModelService:
        return cls(serve_config_from_env(), Store(Path(os.environ[STORE_ENV])), on_stuck)

    # --- the list ------------------------------------------------------------------------
    def sync(self) -> dict[str, Entry]:
        """The listed models; this worker's copies of unlisted ones (or of an older load
        of the name) are dropped."""
        generation, entries = self.store.entries()
        if generation != self._seen:
            self._seen = generation
            for name, hosted in list(self.hosted.items()):
                listed = entries.get(name)
                if listed is None or listed.load_id != hosted.entry.load_id:
                    self._drop(name)
        return entries

    def _drop(self, name: str) -> None:
        hosted = self.hosted.pop(name, None)
        if hosted is None:
            return
        if hosted.engine is not None:
            hosted.engine.close(f"model {name!r} was unloaded")
        log.info(
            "model unloaded %s",
            logs.kv(model=name, requests=hosted.requests, worker_pid=os.getpid()),
        )
        self._let_go = True

    def _start(self, entry: Entry, plugin: Plugin | None = None) -> Hosted:
        """This worker's copy of `entry`, loading in the background (its engine's native
        thread) unless it is loaded or loading already. 503 when its last try failed less
        than RETRY_S ago."""
        with self._guard:
            hosted = self.hosted.get(entry.name)
            if hosted is not None and hosted.entry.load_id == entry.load_id:
                return hosted
            failed = self._failed.get(entry.load_id)
            if failed and time.monotonic() - failed[0] < RETRY_S:
                raise HTTPError(503, f"{failed[1]}; retry shortly")
            if hosted is not None:
                self._drop(entry.name)
            path = Path(entry.path)
            try:
                plugin = plugin or registry.plugin_for(path)
            except UserError as exc:
                self._fail(entry, exc)
                raise HTTPError(503, self._failed[entry.load_id][1]) from None
            hosted = Hosted(entry, plugin)
            cfg, lock = self.cfg, self._compute

            def load() -> SharedModel:
                runtime = Runtime.for_worker(cfg)
                return SharedModel(plugin, plugin.load(path, runtime), runtime, lock)

            hosted.engine = BatchEngine(
                load,
                cfg.max_batch_size,
                cfg.max_batch_delay_ms / 1000.0,
                on_load_error=lambda exc: self._fail(entry, exc, hosted),
                stuck_after_s=cfg.timeout,
                on_stuck=self._on_stuck,
                name=entry.name,
            )
            self.hosted[entry.name] = hosted
            return hosted

    def _fail(self, entry: Entry, exc: BaseException, hosted: Hosted | None = None) -> None:
        """This worker could not load its copy of `entry`: say so for RETRY_S, then retry."""
        why = load_error(entry.name, exc).message
        now = time.monotonic()
        for load_id, (when, _) in list(self._failed.items()):  # only the recent matter
            if now - when > 10 * RETRY_S:
                del self._failed[load_id]
        self._failed[entry.load_id] = (now, why)
        if hosted is not None and self.hosted.get(entry.name) is hosted:
            del self.hosted[entry.name]
        self._let_go = True

    # --- POST /models --------------------------------------------------------------------
    def load(self, body: bytes) -> dict:
        """Load the model POST /models names, in this worker, and list it: its description
        once it answers its sample request. 409 when the name is listed, 507 when memory
        does not allow, 400 or 404 for a bad request or a model that cannot load."""
        if len(body) > MAX_LOAD_BODY:
            raise HTTPError(413, f"a load request is at most {MAX_LOAD_BODY} bytes")
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPError(400, "the load request is not valid JSON") from None
        if not isinstance(request, dict):
            raise HTTPError(400, 'the load request must be {"model_name": ..., "url": ...}')
        name = multimodel.check_name(request.get("model_name"))
        url = request.get("url")
        path = multimodel.check_url(url, self.root)
        # Weighed (sizes, and model.ckpt's zip directory) before its files are checked,
        # and a 409 or 507 answered then: a GB of plugin.json, or a checkpoint whose
        # members take more than the budget once read, is never parsed.
        memory_mb = multimodel.estimate_mb(path)
        self.sync()
        self.store.check_admission(name, memory_mb, self.budget_mb, self.workers)
        try:
            plugin = registry.check_model_dir(path)
        except UserError as exc:
            raise HTTPError(400, f"model {name!r} cannot be loaded: {exc}") from None
        entry = self.store.reserve(
            name, url, path, plugin.name, memory_mb, self.budget_mb, self.workers
        )
        started = time.monotonic()
        try:
            hosted = self._start(entry, plugin)
        except BaseException:
            self.store.release(entry)
            raise
        threading.Thread(target=self._settle, args=(hosted, started), daemon=True).start()
        if not hosted.done.wait(self.cfg.timeout):
            log.warning(
                "model load overran %s",
                logs.kv(
                    model=name,
                    seconds=self.cfg.timeout,
                    worker_pid=os.getpid(),
                    at=hosted.engine.where(),
                ),
            )
            raise HTTPError(
                504,
                f"model {name!r} is still loading after {self.cfg.timeout} s; it is listed "
                "once it has loaded",
            )
        if hosted.outcome == "unloaded":
            raise HTTPError(503, f"model {name!r} was unloaded while it loaded; load it again")
        if hosted.outcome != "loaded":
            raise load_error(name, hosted.engine.error or RuntimeError("unknown"))
        return self.describe(name)

    def _settle(self, hosted: Hosted, started: float) -> None:
        """Once this worker's load of a POST /models is done: list it as loaded, or
        unlist it (a failed load leaves nothing behind)."""
        engine, entry = hosted.engine, hosted.entry
        try:
            engine.wait_settled()
            if not engine.ready:
                self.store.release(entry)
                hosted.outcome = "failed"
                return
            listed = self.store.commit(entry)
            if listed is None:
                self._drop(entry.name)
                hosted.outcome = "unloaded"
                return
            hosted.entry = listed
            hosted.outcome = "loaded"
            log.info(
                "model listed %s",
                logs.kv(
                    model=entry.name,
                    plugin=entry.plugin,
                    memory_mb=entry.memory_mb,
                    workers=self.workers,
                    seconds=round(time.monotonic() - started, 3),
                ),
            )
        finally:
            hosted.done.set()

    # --- GET and DELETE ------------------------------------------------------------------
    def list(self, args: Mapping[str, str]) -> dict:
        after, size = multimodel.read_page_args(args)
        entries = self.sync()
        names, token = multimodel.page(list(entries), after, size)
        out: dict[str, Any] = {
            "models": [{"modelName": n, "modelUrl": entries[n].url} for n in names]
        }
        if token:
            out["nextPageToken"] = token
        return out

    def describe(self, name: str) -> dict:
        entry = self.sync().get(name) if multimodel.is_name(name) else None
        if entry is None:
            raise HTTPError(404, f"model {shown(name)!r} is not loaded")
        last = self.store.last_used(entry.slot)
        return {
            "modelName": entry.name,
            "modelUrl": entry.url,
            "plugin": entry.plugin,
            "state": entry.state,
            "memoryMb": entry.memory_mb,
            "workers": self.workers,
            "lastUsed": round(last, 3) if last else None,
        }

    def unload(self, name: str) -> dict:
        if not multimodel.is_name(name):
            raise HTTPError(404, f"model {shown(name)!r} is not loaded")
        entry = self.store.remove(name)
        self.sync()  # drops this worker's copy
        return {"modelName": entry.name, "modelUrl": entry.url}

    # --- POST /models/<name>/invoke ------------------------------------------------------
    def target(self, name: str) -> tuple[tuple[Plugin, BatchEngine], float]:
        """(the plug-in and engine of this worker's copy of `name`, the request's
        deadline) for `invoke`: 404 when it is not listed; a model another worker is
        still loading, or this worker's copy, is waited for within MODEL_SERVER_TIMEOUT."""
        deadline = time.monotonic() + self.cfg.timeout
        if not multimodel.is_name(name):
            raise HTTPError(404, f"model {shown(name)!r} is not loaded")
        while True:
            entry = self.sync().get(name)
            if entry is None:
                raise HTTPError(404, f"model {name!r} is not loaded")
            if entry.state == LOADED or entry.pid == os.getpid():
                break
            if not entry.live():
                raise HTTPError(404, f"model {name!r} is not loaded (its load was cut short)")
            if time.monotonic() > deadline:
                raise HTTPError(503, f"model {name!r} is still loading; retry shortly")
            time.sleep(0.05)
        hosted = self._start(entry)
        hosted.requests += 1
        self.store.touch(entry.slot)
        return (hosted.plugin, hosted.engine), deadline

    # --- in the background ---------------------------------------------------------------
    def _poll(self) -> None:
        while True:
            time.sleep(POLL_S)
            try:
                self._load_next(self.sync())
                if self._let_go:
                    self._let_go = False
                    gc.collect()
                    _malloc_trim()
            except Exception:
                log.exception("the list of models could not be read")

    def _load_next(self, entries: dict[str, Entry]) -> None:
        """Start this worker's copy of one listed model it lacks, the most recently used
        first; one at a time."""
        busy = self._background
        if busy is not None and busy.engine is not None and not busy.engine.wait_settled(0):
            return
        self._background = None
        now = time.monotonic()
        missing = [
            e
            for e in entries.values()
            if e.state == LOADED
            and e.name not in self.hosted
            and now - self._failed.get(e.load_id, (-RETRY_S, ""))[0] >= RETRY_S
        ]
        if missing:
            entry = max(missing, key=lambda e: self.store.last_used(e.slot))
            with contextlib.suppress(HTTPError):
                self._background = self._start(entry)
