"""Multi-model endpoints: the rules, the memory budget, and the list every worker shares.

On a multi-model endpoint (MME) SageMaker extracts each model.tar.gz into
`contract.models_dir()`/<name>/model and calls the container:

    POST   /models                 {"model_name": NAME, "url": DIR}: load it (409 when it is
                                   loaded; 507 when memory does not allow)
    GET    /models                 the loaded models, by pages (max_results, next_page_token)
    GET    /models/NAME            one of them (404 when unknown)
    DELETE /models/NAME            unload it (404 when unknown)
    POST   /models/NAME/invoke     what /invocations is to a single model

A request for a model may reach any gunicorn worker, so the loaded models are a list that
every worker reads: `Store`, a JSON file in serve's runtime directory, rewritten whole
(write, then rename) under an exclusive `flock`, with a generation counter and each
model's last use in a few bytes of memory that every worker maps (a file of
`HEADER + 8 * MAX_MODELS` bytes). A worker compares the counter (one 8-byte read) at each
request and rereads the file only when it moved. Every worker holds its own copy of every
listed model, as every worker holds the model on a single-model endpoint
(`multimodel_service`), so the budget counts a model once per worker.

Everything here is hostile input: a model name appears in log lines and URLs, a url
names a folder, the folder's size decides the budget (model.ckpt's at what its members
take once read). Nothing here imports torch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import math
import mmap
import os
import re
import struct
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from . import artifacts
from .codecs import HTTPError
from .errors import UserError
from .memory import container_memory_mb

# --- names, urls and pages --------------------------------------------------------------
MAX_NAME_LENGTH = 255  # a folder name: SageMaker extracts the model into models/<name>/
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_URL_LENGTH = 4096  # PATH_MAX
MAX_MODELS = 10_000  # listed at once: the shared memory holds a last-use time for each
DEFAULT_RESULTS = 100  # models on a page of GET /models without max_results
MAX_RESULTS = 1000
MAX_FILES = 100_000  # in one model directory, counted for its size


def shown(value: object, limit: int = 80) -> str:
    """`value` cut to `limit` characters for a message or a log line (a 10 KB name stays
    a short one); `logs.kv` and the formatter make what is left inert."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(name: object) -> str:
    """A model name as SageMaker sends one: letters, digits, `.`, `_` and `-`, starting
    with a letter or digit (never `.` or `..`), at most MAX_NAME_LENGTH characters."""
    if not isinstance(name, str) or not name:
        raise HTTPError(400, "model_name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise HTTPError(
            400,
            f"model_name {shown(name)!r} is not valid: at most {MAX_NAME_LENGTH} letters, "
            "digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def is_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name))


def check_url(url: object, root: Path) -> Path:
    """The model directory `url` names: an absolute path to a folder inside `root` (the
    contract's models folder) once every link is resolved, and not `root` itself. 400
    for a path outside it, 404 for one that does not exist."""
    if not isinstance(url, str) or not url:
        raise HTTPError(400, "url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH or "\x00" in url or not url.startswith("/"):
        raise HTTPError(400, f"url {shown(url)!r} is not an absolute path")
    try:
        base = root.resolve(strict=True)
    except OSError:
        raise HTTPError(404, f"url {shown(url)!r}: there is no models folder {root}") from None
    try:
        path = Path(url).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a loop of links
        inside = os.path.normpath(url).startswith(str(root) + os.sep)
        if inside:
            raise HTTPError(404, f"url {shown(url)!r}: no such model directory") from None
        raise HTTPError(400, f"url {shown(url)!r} is outside {root}") from None
    if base not in path.parents:
        raise HTTPError(400, f"url {shown(url)!r} is outside {root} (links resolved)")
    if not path.is_dir():
        raise HTTPError(400, f"url {shown(url)!r} is not a folder")
    return path


def page_token(name: str) -> str:
    """The token of the page that starts after `name`: opaque to SageMaker."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def read_page_args(args: Mapping[str, str]) -> tuple[str | None, int]:
    """(the name the page starts after, or None; its size) from GET /models's query."""
    raw = args.get("max_results")
    size = DEFAULT_RESULTS
    if raw is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_RESULTS:
            raise HTTPError(
                400, f"max_results={shown(raw)!r} is not valid: expected 1 to {MAX_RESULTS}"
            )
        size = int(raw)
    token = args.get("next_page_token")
    if token is None or token == "":
        return None, size
    try:
        if len(token) > 2 * MAX_NAME_LENGTH or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise ValueError
        after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        after = ""
    if not is_name(after):
        raise HTTPError(400, f"next_page_token={shown(token)!r} is not a token this server gave")
    return after, size


def page(names: list[str], after: str | None, size: int) -> tuple[list[str], str | None]:
    """The sorted `names` after `after`, `size` of them, and the next page's token (None
    on the last page). A token survives models loaded and unloaded between pages."""
    ordered = sorted(names)
    start = 0
    if after is not None:
        start = next((i for i, n in enumerate(ordered) if n > after), len(ordered))
    chunk = ordered[start : start + size]
    more = start + size < len(ordered)
    return chunk, page_token(chunk[-1]) if more and chunk else None


# --- memory -----------------------------------------------------------------------------
# A model's footprint in one worker, from its model directory's size on disk: the weights
# loaded (fp32 about their size on disk, bf16 a quarter more: the encoder's matmul copies),
# the tokenizer and what the first forward passes allocate. Measured with the text
# classifier (MiniLM: 87 MB on disk, 93-97 MB per copy in fp32, 117-130 MB in bf16; the
# tests' tiny one: 4.6 MB on disk, 10-15 MB per copy) and the tabular and image ones
# (under a MB each).
OVERHEAD_MB = 16.0
DISK_FACTOR = 1.6
# The container's memory that models may not take: room for each worker's interpreter,
# torch and the plug-ins' imports (about 350 MB measured) and for the requests in flight.
MEMORY_FRACTION = 0.85
WORKER_RESERVE_MB = 512


def default_budget_mb(workers: int, memory_mb: float | None = None) -> int:
    """MODEL_SERVER_MME_MEMORY_MB's default: MEMORY_FRACTION of the container's memory
    less WORKER_RESERVE_MB per worker (0 when that leaves nothing: every load is a 507)."""
    memory = container_memory_mb() if memory_mb is None else memory_mb
    return max(0, int(MEMORY_FRACTION * memory - WORKER_RESERVE_MB * max(1, workers)))


def directory_bytes(model_dir: Path) -> int:
    """The size of the files in `model_dir` (a link to a file counts as that file; links
    to folders are not followed). More than MAX_FILES entries is a 400."""
    total, seen, stack = 0, 0, [model_dir]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_FILES:
                    raise HTTPError(400, f"the model directory holds over {MAX_FILES} files")
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file():
                        total += entry.stat().st_size
    return total


def estimate_mb(model_dir: Path) -> float:
    """What one worker's copy of the model in `model_dir` takes, estimated before it is
    loaded (before anything in it is read but model.ckpt's zip directory): OVERHEAD_MB
    plus DISK_FACTOR times the directory's size on disk, model.ckpt counted at its members'
    size once read where that is more. torch.load reads DEFLATE-compressed members too
    (a GB of zeros in a MB), which `check_weights` refuses, but only after this estimate
    has had its say; a model.ckpt that is not a checkpoint counts at its size on disk."""
    size = directory_bytes(model_dir)
    with contextlib.suppress(UserError, OSError):
        unpacked = artifacts.checkpoint_bytes(model_dir)
        size += max(0, unpacked - (model_dir / artifacts.CHECKPOINT).stat().st_size)
    return round(OVERHEAD_MB + DISK_FACTOR * size / 2**20, 1)


# --- the list of loaded models, shared by the workers ---------------------------------------
STORE_ENV = "SERVE_MME_STORE"  # set by `serving` for the workers: the Store's folder
LOADING, LOADED = "loading", "loaded"
REGISTRY, LOCK, SHARED = "models.json", "models.lock", "models.shm"
HEADER = 8  # the generation counter, then a float64 last use per slot


@dataclass(frozen=True)
class Entry:
    """One listed model. `load_id` tells two loads of the same name apart (unloaded and
    loaded again, maybe from new files): a worker's copy of an older load is dropped."""

    name: str
    url: str  # as POST /models named it
    path: str  # resolved: what the workers load
    plugin: str
    memory_mb: float  # per worker
    state: str  # LOADING (by the worker `pid`) or LOADED
    pid: int
    load_id: str
    slot: int  # its last use in the shared memory
    since: float  # time.time() of the load

    def live(self) -> bool:
        """Not a load whose worker died before it finished."""
        return self.state == LOADED or _alive(self.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _admit(
    entries: dict[str, Entry], name: str, memory_mb: float, budget_mb: float, workers: int
) -> None:
    """409 when `name` is in `entries`; 507 when MAX_MODELS are, or when its copies in every
    worker would take them past `budget_mb`."""
    if name in entries:
        raise HTTPError(409, f"model {name!r} is already {entries[name].state}")
    if len(entries) >= MAX_MODELS:
        raise HTTPError(507, f"{MAX_MODELS} models are loaded, the most this server holds")
    used = sum(e.memory_mb for e in entries.values()) * workers
    need = memory_mb * workers
    if used + need > budget_mb:
        raise HTTPError(
            507,
            f"not enough memory to load model {name!r}: it needs about "
            f"{math.ceil(need)} MB ({workers} worker(s) x {memory_mb:g} MB), and "
            f"{math.ceil(used)} MB of the {budget_mb:g} MB budget is taken "
            "(MODEL_SERVER_MME_MEMORY_MB); unload a model and retry",
        )


class Store:
    """The models listed in `folder` (serve's runtime directory): see the module's
    docstring. `create` in serve, before the workers start; `Store(folder)` in each."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        fd = os.open(self.folder / SHARED, os.O_RDWR)
        try:
            self._shared = mmap.mmap(fd, HEADER + 8 * MAX_MODELS)
        finally:
            os.close(fd)
        self._cache: tuple[int, dict[str, Entry]] = (-1, {})

    @classmethod
    def create(cls, folder: Path) -> Store:
        folder.mkdir(mode=0o700, parents=True, exist_ok=False)
        (folder / REGISTRY).write_text('{"models": []}\n')
        (folder / LOCK).touch()
        with open(folder / SHARED, "wb") as f:
            f.truncate(HEADER + 8 * MAX_MODELS)
        return cls(folder)

    # --- reading: any worker, any time, without the lock ----------------------------------
    def generation(self) -> int:
        return struct.unpack_from("<Q", self._shared, 0)[0]

    def entries(self) -> tuple[int, dict[str, Entry]]:
        """(generation, the listed models by name), reread only when the generation moved."""
        generation = self.generation()  # before the file: a later write moves it again
        if generation != self._cache[0]:
            self._cache = (generation, self._read())
        return self._cache

    def _read(self) -> dict[str, Entry]:
        raw = json.loads((self.folder / REGISTRY).read_text())
        return {e["name"]: Entry(**e) for e in raw["models"]}

    def touch(self, slot: int) -> None:
        struct.pack_into("<d", self._shared, HEADER + 8 * slot, time.time())

    def last_used(self, slot: int) -> float:
        return struct.unpack_from("<d", self._shared, HEADER + 8 * slot)[0]

    # --- writing: under the lock -----------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Entry]]:
        """The live entries, to change in place; written back (and the generation moved)
        when the block ends without an exception."""
        with open(self.folder / LOCK, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            listed = self._read()
            entries = {n: e for n, e in listed.items() if e.live()}
            yield entries
            if entries != listed:  # changed, or a dead worker's load dropped
                self._write(entries)

    def _write(self, entries: dict[str, Entry]) -> None:
        models = [asdict(entries[n]) for n in sorted(entries)]
        tmp = self.folder / f"{REGISTRY}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"models": models}) + "\n")
        os.replace(tmp, self.folder / REGISTRY)
        struct.pack_into("<Q", self._shared, 0, self.generation() + 1)

    def reserve(
        self,
        name: str,
        url: str,
        path: Path,
        plugin: str,
        memory_mb: float,
        budget_mb: float,
        workers: int,
    ) -> Entry:
        """List `name` as loading by this process: 409 when it is listed (loaded or
        loading), 507 when its copies in every worker would take the listed models past
        `budget_mb`, or when MAX_MODELS are listed."""
        with self._locked() as entries:
            _admit(entries, name, memory_mb, budget_mb, workers)
            taken = {e.slot for e in entries.values()}
            slot = next(i for i in range(MAX_MODELS) if i not in taken)
            entry = Entry(
                name=name,
                url=url,
                path=str(path),
                plugin=plugin,
                memory_mb=memory_mb,
                state=LOADING,
                pid=os.getpid(),
                load_id=uuid.uuid4().hex,
                slot=slot,
                since=time.time(),
            )
            entries[name] = entry
            self.touch(slot)
        return entry

    def check_admission(self, name: str, memory_mb: float, budget_mb: float, workers: int) -> None:
        """`reserve`'s 409 and 507 on the list as it is, without the lock and listing
        nothing: POST /models asks before it reads the model directory, so that a load
        the budget refuses is refused before its files are parsed. `reserve` decides."""
        _, entries = self.entries()
        _admit({n: e for n, e in entries.items() if e.live()}, name, memory_mb, budget_mb, workers)

    def commit(self, entry: Entry) -> Entry | None:
        """`entry`'s load is done: listed as loaded. None when it was unloaded meanwhile."""
        with self._locked() as entries:
            listed = entries.get(entry.name)
            if listed is not None and listed.load_id == entry.load_id:
                entries[entry.name] = done = Entry(**{**asdict(entry), "state": LOADED})
                return done
        return None

    def release(self, entry: Entry) -> None:
        """`entry`'s load failed: no longer listed (unless another load has the name)."""
        with self._locked() as entries:
            if (listed := entries.get(entry.name)) and listed.load_id == entry.load_id:
                del entries[entry.name]

    def remove(self, name: str) -> Entry:
        """Unlist `name`; 404 when it is not listed."""
        with self._locked() as entries:
            entry = entries.pop(name, None)
        if entry is None:
            raise HTTPError(404, f"model {shown(name)!r} is not loaded")
        return entry
