"""gunicorn's settings, all from the environment that `serving` prepared.

Loaded by `gunicorn -c python:sagemaker_platform.gunicorn_conf`. gevent workers keep the
event loop free for /ping and new requests; each worker loads its own copy of the
model and, on a GPU host, is pinned to its own GPU; on a CPU host the workers share the
cores (`cores`), through memory mapped here, in the master, before it forks them.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import resource

from gunicorn import util

from sagemaker_platform import cores, logs
from sagemaker_platform.config import serve_config_from_env
from sagemaker_platform.serving import gpu_for_worker

SOCKET_ENV = "GUNICORN_BIND"  # set by `serving`: the unix socket nginx proxies to
GPUS_ENV = "SERVE_GPU_COUNT"  # set by `serving`: GPUs to share out, one per worker
SHARED_CORES_ENV = "SERVE_SHARED_CORES"  # set by `serving`: CPU cores the workers share

_cfg = serve_config_from_env()
_gpus = int(os.environ.get(GPUS_ENV, "0"))
_shared_cores = int(os.environ.get(SHARED_CORES_ENV, "0"))
_share = cores.CoreShare(_shared_cores) if _shared_cores else None

# nginx streams /invocations bodies through as they arrive, so each of the 1,024
# /invocations connections it lets in at once (those still sending their bodies
# included) is a connection here too, beside nginx's 64 kept-alive ones and /ping; the
# workers race to accept them, so any one worker may hold them all and must still have
# room to answer /ping. A waiting connection costs a greenlet, not the worker.
bind = os.environ.get(SOCKET_ENV, "127.0.0.1:8000")
workers = max(1, _cfg.workers)
worker_class = "gevent"
worker_connections = 2048
OPEN_FILES = 8192  # as nginx's worker_rlimit_nofile: connections and the model's files


def raise_open_files(want: int = OPEN_FILES) -> int:
    """Lift the soft limit on open files towards `want` (never past the hard limit):
    containers may start with a soft limit of 1024, under worker_connections. The
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


raise_open_files()  # in the master, before it forks the workers
timeout = _cfg.timeout
graceful_timeout = 25  # SageMaker sends SIGKILL 30 s after SIGTERM
keepalive = 75  # longer than nginx's upstream keepalive use
accesslog = None  # nginx logs requests
errorlog = "-"
loglevel = "info"
proc_name = "model-server"
control_socket_disable = True  # gunicorn 26's admin socket: unused, and it writes to $HOME


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusals in JSON, like every other answer, instead of its HTML page:
    a request nginx passes on that gunicorn's stricter parser refuses (a control
    character in a header value) would otherwise reach the client as text/html."""
    body = json.dumps({"error": f"{reason.lower()}: {mesg}" if mesg else reason.lower()})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1"))


# The workers call util.write_error at the time of each refusal; set here, in the master,
# before they are forked.
util.write_error = write_json_error


def pre_fork(server, worker):
    """In the master: give the new worker the lowest slot no live worker holds; the
    slot picks its GPU and its byte of the core share."""
    taken = {getattr(w, "slot", None) for w in server.WORKERS.values()}
    worker.slot = next(i for i in itertools.count() if i not in taken)
    if _gpus:
        worker.gpu = gpu_for_worker(worker.slot, _gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))


def post_fork(server, worker):
    """In the worker, before torch initialises CUDA: see only its own GPU, or take its
    place among the workers sharing the cores."""
    logs.setup()
    if _share is not None:
        _share.attach(worker.slot)
        cores.install(_share)
    gpu = getattr(worker, "gpu", None)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        logging.getLogger("serve").info(logs.kv(worker_pid=worker.pid, gpu=gpu))


def child_exit(server, worker):
    """In the master, for a worker that exited: it may have died computing (killed, or
    replaced when stuck), so mark its slot idle."""
    if _share is not None:
        _share.release(worker.slot)
