"""The serving process: check the model, render nginx.conf, run nginx and gunicorn.

On a multi-model endpoint (`ServeConfig.mme`) it starts with no model: SageMaker loads
them through /models (`multimodel`, `multimodel_service`), and `serve` creates the list of
loaded models the workers share in its runtime directory.

`serve` is PID 1 in the container. It passes SIGTERM on (nginx drains, gunicorn
finishes in-flight requests) and exits non-zero as soon as either child dies on its
own, so that SageMaker replaces the container instead of leaving half a server.
Torch is never imported here: the workers load the model.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import contract, logs, multimodel, registry
from .config import ConfigError, ServeConfig, serve_config_from_env
from .errors import UserError

log = logging.getLogger("serve")

PROGRAM_DIR = Path(__file__).resolve().parents[1]  # /opt/program in the image
NGINX_TEMPLATE = PROGRAM_DIR / "nginx.conf"


def gpu_count() -> int:
    """GPUs this container may use, without importing torch (it would cost seconds)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len(_visible_devices(visible))
    return len(glob.glob("/dev/nvidia[0-9]*"))


def gpu_for_worker(slot: int, gpus: int, visible: str | None) -> str:
    """The CUDA_VISIBLE_DEVICES of the worker in `slot` on a host with `gpus` GPUs: one
    GPU each, in turn, from the devices `visible` (the master's CUDA_VISIBLE_DEVICES)
    lists, or 0..gpus-1 where it is unset. gunicorn_conf pins each worker with it."""
    devices = _visible_devices(visible) if visible else [str(i) for i in range(gpus)]
    return devices[slot % gpus]


def _visible_devices(visible: str) -> list[str]:
    return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]


MAX_CPU_WORKERS = 4  # each holds a copy of the model


def resolve(cfg: ServeConfig, gpus: int, cores: int) -> ServeConfig:
    """Fill in the automatic settings: one worker per GPU, or on CPU one per core (at
    most MAX_CPU_WORKERS), and torch threads split so that workers x threads never
    exceed the cores."""
    workers = cfg.workers or (gpus or min(cores, MAX_CPU_WORKERS))
    threads = cfg.threads or max(1, cores // workers)
    if not gpus and workers * threads > cores:
        threads = max(1, cores // workers)
    device = cfg.device if cfg.device != "auto" else ("cuda" if gpus else "cpu")
    return replace(cfg, workers=workers, threads=threads, device=device)


def shared_cores(requested: ServeConfig, resolved: ServeConfig, cores: int) -> int:
    """The cores that CPU workers share (`cores`: a worker computing alone takes all of
    them), or 0: one worker, a GPU, or threads set by the user."""
    if resolved.device != "cpu" or resolved.workers < 2 or requested.threads:
        return 0
    return cores


# nginx.conf's routes for a multi-model endpoint, between these lines: dropped otherwise.
_MULTI_MODEL_BLOCK = re.compile(
    r"^[ \t]*# multi-model:start.*?^[ \t]*# multi-model:end[^\n]*\n", re.S | re.M
)


def render_nginx(cfg: ServeConfig, runtime_dir: Path, socket: Path) -> Path:
    values = {
        "runtime_dir": str(runtime_dir),
        "socket": str(socket),
        "port": str(cfg.port),
        "max_body_mb": str(max(1, int(cfg.max_payload_mb + 0.999))),
        "timeout": str(cfg.timeout + 5),
        "client_timeout": str(cfg.client_timeout),
    }
    text = NGINX_TEMPLATE.read_text()
    if not cfg.mme:
        text = _MULTI_MODEL_BLOCK.sub("", text)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    out = runtime_dir / "nginx.conf"
    out.write_text(text)
    return out


def child_env(
    cfg: ServeConfig, socket: Path, gpus: int, shared: int = 0, store: Path | None = None
) -> dict[str, str]:
    from .cpu_bf16 import PROBE_FILE_ENV
    from .gunicorn_conf import GPUS_ENV, SHARED_CORES_ENV, SOCKET_ENV

    env = dict(os.environ)
    env.update(
        {
            contract.WORKERS_ENV: str(cfg.workers),
            contract.THREADS_ENV: str(cfg.threads),
            contract.DEVICE_ENV: cfg.device,
            contract.MAX_PAYLOAD_ENV: str(cfg.max_payload_mb),
            contract.BASE_DIR_ENV: str(contract.base_dir()),  # gunicorn runs from PROGRAM_DIR
            SOCKET_ENV: f"unix:{socket}",
            GPUS_ENV: str(gpus if cfg.device == "cuda" else 0),
            SHARED_CORES_ENV: str(shared),
            # the workers' one bf16 measurement (`cpu_bf16.cpu_bf16_speedup`), beside the socket
            PROBE_FILE_ENV: str(socket.parent / "cpu-bf16-probe"),
            "OMP_NUM_THREADS": str(cfg.threads),
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if store is not None:  # a multi-model endpoint: its model list and memory budget
        env[multimodel.STORE_ENV] = str(store)
        env[contract.MME_MEMORY_ENV] = str(cfg.mme_memory_mb)
    return env


def _stop_signal(child: str) -> signal.Signals:
    """A child's graceful stop: SIGQUIT for nginx (it drains), SIGTERM for gunicorn (it
    finishes the requests in flight)."""
    return signal.SIGQUIT if child == "nginx" else signal.SIGTERM


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_parent(stop: signal.Signals):
    """A `preexec_fn` asking Linux to send the child `stop` when this process dies;
    None where there is no prctl (not Linux). Looked up here, not in the child: a
    forked child may only make async-signal-safe calls."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(stop), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), stop)

    return arm


class Supervisor:
    """Runs the children, forwards signals, and reports the first one to die."""

    def __init__(self):
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str], **kwargs) -> None:
        # Each child leads its own process group, so that what it leaves behind (an
        # nginx worker whose master was killed) can be cleaned up with it. Its stop
        # signal comes from the kernel too if this process dies without forwarding it
        # (SIGKILL, out of memory): outside a container nothing else would stop a server
        # left answering on the port.
        self.children[name] = subprocess.Popen(
            argv, start_new_session=True, preexec_fn=_stop_with_parent(_stop_signal(name)), **kwargs
        )

    def _kill_groups(self) -> None:
        for proc in self.children.values():
            if proc.poll() is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def stop(self, signum=None, frame=None) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping %s", logs.kv(signal=signal.Signals(signum).name if signum else "none"))
        for name, proc in self.children.items():
            if proc.poll() is None:
                proc.send_signal(_stop_signal(name))
        self._kill_groups()

    def wait(self) -> int:
        """Block until every child is gone: 0 if we asked them to stop, 1 if one died
        on its own first (then the others are stopped too)."""
        failed = False
        while True:
            running = False
            for name, proc in self.children.items():
                if proc.poll() is None:
                    running = True
                elif not self.stopping:
                    log.error("%s exited with code %s; stopping the server", name, proc.returncode)
                    failed = True
                    self.stop()
            if not running:
                self._kill_groups()
                return 1 if failed else 0
            time.sleep(0.1)


def serve() -> int:
    try:
        cfg = serve_config_from_env()
        plugin = None if cfg.mme else registry.check_model_dir(contract.model_dir())
    except (ConfigError, UserError) as exc:
        log.error("cannot serve: %s", exc)
        return 1
    if shutil.which("nginx") is None:
        log.error("cannot serve: nginx is not installed (apt-get install nginx)")
        return 1
    gpus, cores = gpu_count(), cpu_cores()
    requested, cfg = cfg, resolve(cfg, gpus, cores)
    shared = shared_cores(requested, cfg, cores)
    runtime_dir = Path(tempfile.mkdtemp(prefix="serve-"))
    runtime_dir.chmod(0o755)  # nginx workers may run as another user
    socket = runtime_dir / "gunicorn.sock"
    conf = render_nginx(cfg, runtime_dir, socket)
    store, where = None, {"model_dir": contract.model_dir()}
    if cfg.mme:
        budget = cfg.mme_memory_mb or multimodel.default_budget_mb(cfg.workers)
        cfg = replace(cfg, mme_memory_mb=budget)
        store = runtime_dir / "models"
        multimodel.Store.create(store)
        where = {"multi_model": True, "mme_memory_mb": budget, "models_dir": contract.models_dir()}
        if not budget:
            log.warning(
                "the memory budget for models is 0 MB: every load will be refused; set %s",
                contract.MME_MEMORY_ENV,
            )
    log.info(
        "config %s",
        logs.kv(
            plugin=plugin.name if plugin else "any",
            mode=cfg.kind,
            port=cfg.port,
            workers=cfg.workers,
            threads=cfg.threads,
            shared_cores=shared,
            device=cfg.device,
            precision=cfg.precision,
            max_batch_size=cfg.max_batch_size,
            max_batch_delay_ms=cfg.max_batch_delay_ms,
            max_payload_mb=cfg.max_payload_mb,
            timeout=cfg.timeout,
            client_timeout=cfg.client_timeout,
            body_timeout=cfg.body_timeout,
            **where,
        ),
    )
    supervisor = Supervisor()
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    env = child_env(cfg, socket, gpus, shared, store)
    supervisor.start(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:sagemaker_platform.gunicorn_conf",
            "wsgi:app",
        ],
        cwd=str(PROGRAM_DIR),
        env=env,
    )
    # nginx only once gunicorn listens, so early health checks get "connection refused"
    # (SageMaker retries) rather than a 502 and an nginx error line each.
    deadline = time.monotonic() + 30
    while not socket.exists() and time.monotonic() < deadline and not supervisor.stopping:
        if supervisor.children["gunicorn"].poll() is not None:
            break
        time.sleep(0.02)
    supervisor.start("nginx", ["nginx", "-c", str(conf), "-p", str(runtime_dir), "-e", "stderr"])
    try:
        return supervisor.wait()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    """Entry point of `serve` (SageMaker runs `docker run IMAGE serve`)."""
    logs.setup()
    sys.exit(serve())
