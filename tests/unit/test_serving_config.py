import importlib
import os
from types import SimpleNamespace

import pytest

from sagemaker_platform.config import ServeConfig
from sagemaker_platform.serving import gpu_for_worker, render_nginx, resolve, shared_cores


@pytest.mark.parametrize(
    "cores,workers,threads", [(1, 1, 1), (2, 2, 1), (4, 4, 1), (8, 4, 2), (64, 4, 16)]
)
def test_cpu_one_worker_per_core_up_to_four_sharing_the_cores(cores, workers, threads):
    requested = ServeConfig()
    cfg = resolve(requested, gpus=0, cores=cores)
    assert (cfg.workers, cfg.threads, cfg.device) == (workers, threads, "cpu")
    # Several workers share every core: one computing alone takes them all.
    assert shared_cores(requested, cfg, cores) == (cores if workers > 1 else 0)


def test_no_sharing_with_threads_set_by_the_user_or_on_a_gpu():
    fixed = ServeConfig(workers=2, threads=1)
    assert shared_cores(fixed, resolve(fixed, gpus=0, cores=2), 2) == 0
    gpu = ServeConfig()
    assert shared_cores(gpu, resolve(gpu, gpus=2, cores=16), 16) == 0
    one = ServeConfig(workers=1)
    assert shared_cores(one, resolve(one, gpus=0, cores=8), 8) == 0


def test_cpu_workers_times_threads_never_exceed_cores():
    cfg = resolve(ServeConfig(workers=3), gpus=0, cores=8)
    assert cfg.workers * cfg.threads <= 8
    cfg = resolve(ServeConfig(workers=4, threads=4), gpus=0, cores=8)
    assert cfg.workers * cfg.threads <= 8


def test_gpu_host_one_worker_per_gpu():
    cfg = resolve(ServeConfig(), gpus=4, cores=32)
    assert (cfg.workers, cfg.device) == (4, "cuda")


def test_each_worker_gets_one_gpu_in_turn_from_the_visible_ones():
    assert [gpu_for_worker(slot, 2, None) for slot in range(4)] == ["0", "1", "0", "1"]
    assert [gpu_for_worker(slot, 2, "3, 5,") for slot in range(3)] == ["3", "5", "3"]


def test_gunicorn_pins_each_worker_to_the_gpu_serving_chose(monkeypatch, root_logging):
    """pre_fork (master) takes the worker's GPU from `serving.gpu_for_worker`, post_fork
    (worker) makes it the only one CUDA shows it: the decision gpu_check prints."""
    from sagemaker_platform import gunicorn_conf

    monkeypatch.setenv(gunicorn_conf.GPUS_ENV, "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    conf = importlib.reload(gunicorn_conf)
    try:  # post_fork sets up a worker's logging: `root_logging` puts it back
        server = SimpleNamespace(WORKERS={})
        pinned = []
        for pid in (101, 102, 103):
            worker = SimpleNamespace(pid=pid)
            conf.pre_fork(server, worker)
            server.WORKERS[pid] = worker
            conf.post_fork(server, worker)  # as in each forked worker
            pinned.append(os.environ["CUDA_VISIBLE_DEVICES"])
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # the master's again
        assert pinned == ["4", "6", "4"]
    finally:
        monkeypatch.delenv(gunicorn_conf.GPUS_ENV)
        importlib.reload(gunicorn_conf)


def test_nginx_config_is_rendered_with_every_placeholder(tmp_path):
    conf = render_nginx(ServeConfig(port=9123, max_payload_mb=6), tmp_path, tmp_path / "g.sock")
    text = conf.read_text()
    assert "{{" not in text
    assert "listen 9123" in text
    assert "client_max_body_size 6m" in text
    assert f"server unix:{tmp_path}/g.sock" in text
    assert "server_tokens off" in text
    assert "~^/ping 0" in text


@pytest.mark.parametrize(
    "env,body,read_timeout,client_timeout",
    [
        ({}, "6m", "65s", "10s"),
        ({"MODEL_SERVER_MODE": "serverless"}, "4m", "65s", "10s"),
        ({"MODEL_SERVER_MODE": "async"}, "1024m", "3605s", "60s"),
        ({"SAGEMAKER_BATCH": "true"}, "100m", "605s", "60s"),
    ],
)
def test_nginx_takes_each_modes_limits(tmp_path, env, body, read_timeout, client_timeout):
    from sagemaker_platform.config import serve_config_from_env

    text = render_nginx(serve_config_from_env(env), tmp_path, tmp_path / "g.sock").read_text()
    assert f"client_max_body_size {body};" in text
    assert f"proxy_read_timeout {read_timeout};" in text
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert f"{directive} {client_timeout};" in text
    # /invocations bodies stream to the worker, which bounds their whole arrival
    invocations = text[text.index("location = /invocations") :].split("}", 1)[0]
    assert "proxy_request_buffering off;" in invocations


def test_gunicorn_lifts_a_low_open_files_limit_above_its_connections():
    """A container may start with a soft limit of 1,024 open files: one worker holding
    every /invocations connection nginx lets in (their bodies stream through) would run
    out of them, and /ping with it."""
    import resource
    import subprocess
    import sys

    from tests.conftest import MODEL_DIR

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard limit on open files here is {hard}")

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    code = (
        "import resource\n"
        "from sagemaker_platform import gunicorn_conf\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], gunicorn_conf.worker_connections)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(MODEL_DIR),
        capture_output=True,
        text=True,
        preexec_fn=low,
        check=True,
    )
    soft, connections = map(int, result.stdout.split())
    assert soft > connections + 1024


def test_nginx_routes_models_only_on_a_multi_model_endpoint(tmp_path):
    from sagemaker_platform.config import serve_config_from_env

    single = render_nginx(ServeConfig(), tmp_path, tmp_path / "g.sock").read_text()
    assert "/models" not in single and "multi-model" not in single
    mme = serve_config_from_env({"MODEL_SERVER_MULTI_MODEL": "true"})
    text = render_nginx(mme, tmp_path, tmp_path / "g.sock").read_text()
    assert "{{" not in text
    # a model's invocations as /invocations: the same cap, streaming and timeout
    invoke = text[text.index("location ~ ^/models/[^/]+/invoke$") :].split("}", 1)[0]
    for directive in ("limit_conn invocations 1024;", "proxy_request_buffering off;"):
        assert directive in invoke
    assert "proxy_read_timeout 65s;" in invoke
    assert "location ~ ^/models(/[^/]+)?$" in text
    assert set(single.splitlines()) <= set(text.splitlines())  # the rest is the same
