from text_classifier.config import ServeConfig
from text_classifier.serving import render_nginx, resolve


def test_cpu_one_worker_with_every_core():
    cfg = resolve(ServeConfig(), gpus=0, cores=8)
    assert (cfg.workers, cfg.threads, cfg.device) == (1, 8, "cpu")


def test_cpu_workers_times_threads_never_exceed_cores():
    cfg = resolve(ServeConfig(workers=3), gpus=0, cores=8)
    assert cfg.workers * cfg.threads <= 8
    cfg = resolve(ServeConfig(workers=4, threads=4), gpus=0, cores=8)
    assert cfg.workers * cfg.threads <= 8


def test_gpu_host_one_worker_per_gpu():
    cfg = resolve(ServeConfig(), gpus=4, cores=32)
    assert (cfg.workers, cfg.device) == (4, "cuda")


def test_nginx_config_is_rendered_with_every_placeholder(tmp_path):
    conf = render_nginx(ServeConfig(port=9123, max_payload_mb=6), tmp_path, tmp_path / "g.sock")
    text = conf.read_text()
    assert "{{" not in text
    assert "listen 9123" in text
    assert "client_max_body_size 6m" in text
    assert f"server unix:{tmp_path}/g.sock" in text
    assert "server_tokens off" in text
    assert "~^/ping 0" in text
