#!/usr/bin/env python3
"""The image, built from the repo's own Dockerfile and run in containers (`make image-test`).

    python3 tests/image/run.py [--flavor gpu|cpu|all] [--no-scripts]

Both images come from the one Dockerfile: `gpu` on a stand-in for the pytorch/pytorch base
(a Python with torch first on PATH), `cpu` on a stand-in for python:3.X-slim (no torch: the
Dockerfile installs the CPU wheel from TORCH_INDEX_URL). Docker Hub is out of reach here,
so the stand-ins are a debootstrap Debian imported into podman, built once and cached under
a tag made of a hash of what they are made of. Then, for each image, in containers:

  - the image's config: ENTRYPOINT tini, WORKDIR and PATH, the bind-to-port label, port 8080
  - `train` with --network none (SageMaker's network isolation) on a tiny job with the
    baked-in default backbone, /opt/ml mounted from a host folder owned by another user and
    its input/ read-only; SIGTERM once a checkpoint is written (exit 143, a checkpoint
    kept, no model), then the same job again: it resumes and writes the model (exit 0),
    files the host can read
  - `serve` published on 127.0.0.1 only, /opt/ml/model mounted read-only: the cold start
    (run to the first /ping 200), /invocations with each content type, serve on the port
    SAGEMAKER_BIND_TO_PORT names, `stop -t 30` and exit code 0
and, on the gpu image, local_test/{train_local,serve_local,predict}.sh with DOCKER=podman.

It prints the build times, the image sizes (what takes the space) and the cold starts.
Where podman cannot run containers (not installed and not installable, or a trivial
container fails), it prints a SKIPPED banner with the reason and exits 0 (IMAGE_TEST_REQUIRE=1
makes that a failure); a build or a check that fails exits 1.
Environment: IMAGE_TEST_CACHE (work files, default /var/tmp/byoc-image-test),
IMAGE_TEST_TORCH_INDEX_URL (the CPU image's TORCH_INDEX_URL; by default a local index on
127.0.0.1 of the CPU wheel pip finds here: the PyTorch CPU index is out of reach, and PyPI's
torch for Linux x86_64 is the CUDA build, which brings gigabytes of CUDA libraries).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "local_test"))
import make_sample_data  # noqa: E402

CACHE = Path(os.environ.get("IMAGE_TEST_CACHE", "/var/tmp/byoc-image-test"))
CONTAINERS_CONF = HERE / "containers.conf"
STANDIN = HERE / "standin.Containerfile"
# Debian's release whose python3 (3.11) matches the torch wheel the stand-in installs.
SUITE, SUITE_PYTHON = "bookworm", "311"
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,ca-certificates"
HOST_CAS = Path("/usr/local/share/ca-certificates")
# What Debian's and Ubuntu's own images set, so that apt leaves no caches in a layer: without
# it, the Dockerfile's apt-get update would leave 80 MB in the stand-in that the real bases
# do not keep.
DOCKER_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""
TORCH_INDEX_URL = os.environ.get("IMAGE_TEST_TORCH_INDEX_URL", "")
APT_PACKAGES = ["podman", "runc", "netavark", "aardvark-dns", "iptables", "debootstrap"]
IMAGE = "localhost/byoc-image-test"
PAYLOADS = ROOT / "local_test" / "payloads"
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".csv": "text/csv",
    ".txt": "text/plain",
}
# A tiny job: 64 rows of 8 is 8 steps an epoch; a checkpoint every 3 steps.
HYPERPARAMETERS = {
    "epochs": "2",
    "max_length": "32",
    "batch_size": "8",
    "checkpoint_every_n_steps": "3",
}
OTHER_UID = 1000  # owns the mounted /opt/ml, as a host user's folder would


class Skip(Exception):
    """podman cannot run containers here: not a failure of the image."""


class Failure(Exception):
    """A build or a check failed."""


def say(message: str) -> None:
    print(f"image-test: {message}", flush=True)


def banner(title: str, lines: list[str]) -> None:
    bar = "#" * 78
    print(f"\n{bar}\n# {title}", flush=True)
    for line in lines:
        print(f"#   {line}", flush=True)
    print(bar + "\n", flush=True)


def run(
    *argv: str, check: bool = True, timeout: float = 600, **kwargs
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if check and result.returncode != 0:
        raise Failure(
            f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
    return result


def podman(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("podman", *args, **kwargs)


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def drop_other_tags(tag: str) -> None:
    """Remove the stand-ins of earlier recipes (same repository, another content hash)."""
    repository = tag.rsplit(":", 1)[0]
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", repository, check=False)
    for old in set(listed.stdout.split()) - {tag}:
        if old.startswith(repository + ":"):
            podman("rmi", old, check=False)


def gib(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


# --- can podman run containers here? ---------------------------------------------------
def ensure_tools() -> None:
    """podman, runc and debootstrap, installed with apt-get when missing (as root)."""
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if not missing:
        return
    if not sys.platform.startswith("linux"):
        raise Skip(f"{', '.join(missing)} missing, and this is not Linux ({sys.platform})")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Skip(
            f"{', '.join(missing)} not found, and apt-get as root is not available to install "
            f"them (apt-get install {' '.join(APT_PACKAGES)})"
        )
    say(f"installing {' '.join(APT_PACKAGES)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
    ):
        result = run(*argv, check=False, env=env, timeout=900)
        if result.returncode != 0:
            raise Skip(f"{' '.join(argv[:2])} failed: {result.stderr.strip()[-500:]}")


def probe_podman(work: Path) -> None:
    """Run /usr/bin/true from a two-file image made from this machine's own binaries."""
    rootfs = work / "probe-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    true = Path("/usr/bin/true")
    libs = re.findall(r"(/\S+)", run("ldd", str(true)).stdout)
    for f in [str(true), *libs]:
        target = rootfs / f.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    tag = "localhost/byoc-image-test-probe:1"
    if not image_exists(tag):
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = run("podman", "import", "-", tag, stdin=tar.stdout, check=False)
        tar.stdout.close()  # so that tar ends (SIGPIPE) when podman stopped reading
        tar.wait()
        if imported.returncode != 0:
            raise Skip(f"podman import failed: {imported.stderr.strip()[-800:]}")
    shutil.rmtree(rootfs, ignore_errors=True)
    probe = podman("run", "--rm", "--network", "none", tag, "/usr/bin/true", check=False)
    if probe.returncode != 0:
        raise Skip(
            "podman cannot run a trivial container here: "
            f"{(probe.stderr or probe.stdout).strip()[-800:]}"
        )


# --- the stand-in bases -----------------------------------------------------------------
def host_cas() -> list[Path]:
    return sorted(HOST_CAS.glob("**/*.crt")) if HOST_CAS.is_dir() else []


def ensure_debian() -> str:
    """A minimal Debian with python3, trusting the host's local CAs, imported into podman."""
    cas = host_cas()
    key = digest(SUITE, MIRROR, DEBOOTSTRAP_PACKAGES, DOCKER_CLEAN, *(p.read_bytes() for p in cas))
    tag = f"localhost/byoc-standin-debian:{key}"
    if image_exists(tag):
        say(f"stand-in Debian cached: {tag}")
        return tag
    rootfs = CACHE / "debian-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    say(f"debootstrap {SUITE} ({DEBOOTSTRAP_PACKAGES}) ...")
    started = time.monotonic()
    run(
        "debootstrap",
        "--variant=minbase",
        f"--include={DEBOOTSTRAP_PACKAGES}",
        SUITE,
        str(rootfs),
        MIRROR,
        timeout=1200,
    )
    for ca in cas:
        target = rootfs / "usr/local/share/ca-certificates" / ca.relative_to(HOST_CAS)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ca, target)
    run("chroot", str(rootfs), "update-ca-certificates")
    (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(DOCKER_CLEAN)
    for junk in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in rootfs.glob(junk):
            if path.is_file():
                path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        run("podman", "import", "--change", 'CMD ["/bin/bash"]', "-", tag, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    drop_other_tags(tag)
    say(f"stand-in Debian built in {time.monotonic() - started:.0f} s: {tag}")
    return tag


def torch_pin() -> str:
    pin = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin, "requirements.txt must pin torch==X.Y.Z"
    return pin.group(1)


def cpu_wheels() -> Path:
    """torch's CPU wheel and its dependencies for the stand-in's Python, downloaded once
    into a folder: the torch stand-in installs from it, and it is the CPU image's torch
    index here (`serve_index`). On x86_64 Linux, PyPI's torch==X is the CUDA build: the CPU
    one (X+cpu) has to be in pip's find-links, as on this kind of machine."""
    pin = torch_pin()
    wheels = CACHE / "wheels"
    pattern = f"torch-{pin}+cpu-cp{SUITE_PYTHON}-*x86_64.whl"
    done = wheels / f".complete-{pin}"
    if not done.exists():
        say(f"pip download torch=={pin} and its dependencies (cp{SUITE_PYTHON}, x86_64)")
        shutil.rmtree(wheels, ignore_errors=True)
        platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        run(
            sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
            "--python-version", SUITE_PYTHON, *(f"--platform={p}" for p in platforms),
            f"torch=={pin}", "-d", str(wheels), timeout=1200,
        )  # fmt: skip
        done.touch()
    if not list(wheels.glob(pattern)):
        got = sorted(p.name for p in wheels.glob("torch-*"))
        raise Failure(
            f"no {pattern} in {wheels} (got {got}): pip found only torch's CUDA build. Put the "
            "CPU wheel in pip's find-links, or set IMAGE_TEST_TORCH_INDEX_URL to a CPU index"
        )
    return wheels


@contextlib.contextmanager
def serve_index(wheels: Path):
    """A PEP 503 index of `wheels` on 127.0.0.1 (a folder per project, listed by
    http.server), standing in for the PyTorch CPU index; yields its URL. The port is fixed
    by the folder's content when free, so the URL, a build argument, keeps the layer cache."""
    root = CACHE / "index"
    shutil.rmtree(root, ignore_errors=True)
    for wheel in wheels.glob("*.whl"):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        (root / "simple" / project).mkdir(parents=True, exist_ok=True)
        os.link(wheel, root / "simple" / project / wheel.name)
    port = 20000 + int(digest(*sorted(p.name for p in wheels.glob("*.whl"))), 16) % 20000
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/simple"
        for _ in range(100):
            with contextlib.suppress(OSError):
                if http(f"{url}/torch/")[0] == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def ensure_standins(debian: str) -> dict[str, str]:
    """{'python': tag, 'torch': tag}: the CPU image's base and the GPU image's stand-in."""
    wheels = cpu_wheels()
    key = digest(debian, STANDIN.read_bytes(), *sorted(p.name for p in wheels.glob("*.whl")))
    tags = {target: f"localhost/byoc-standin-{target}:{key}" for target in ("python", "torch")}
    if all(image_exists(t) for t in tags.values()):
        say(f"stand-in bases cached: {', '.join(tags.values())}")
        return tags
    context = CACHE / "standin-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for wheel in wheels.glob("*.whl"):
        os.link(wheel, context / wheel.name)
    started = time.monotonic()
    for target, tag in tags.items():
        build(
            ["-f", str(STANDIN), "--target", target, "--build-arg", f"DEBIAN_IMAGE={debian}"],
            tag,
            context,
            CACHE / f"standin-{target}.log",
        )
    shutil.rmtree(context, ignore_errors=True)
    for tag in tags.values():
        drop_other_tags(tag)
    say(f"stand-in bases built in {time.monotonic() - started:.0f} s")
    return tags


# --- building -----------------------------------------------------------------------------
def build(args: list[str], tag: str, context: Path, log: Path) -> float:
    """podman build (docker format: podman ignores SHELL in OCI images); the seconds taken.
    Progress lines go to stdout, the whole output to `log`."""
    argv = ["podman", "build", "--format", "docker", "--pull=never", *args, "-t", tag, str(context)]
    say("+ " + " ".join(argv))
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if re.match(r"(\[\d+/\d+\] )?STEP |--> Using cache|Successfully tagged", line):
                print("    " + line.rstrip()[:150], flush=True)
        code = proc.wait()
    if code != 0:
        tail = log.read_text().splitlines()[-60:]
        raise Failure(f"podman build of {tag} exited {code}; the end of {log}:\n" + "\n".join(tail))
    return time.monotonic() - started


def size_of(tag: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def space_report(tag: str) -> list[str]:
    """The biggest folders of the image's site-packages, and the layers' sizes."""
    script = (
        "import site, subprocess; d = site.getsitepackages()[0]; print(d); "
        "subprocess.run(f'du -sm {d}/* | sort -rn | head -8', shell=True)"
    )
    out = podman("run", "--rm", "--network", "none", tag, "python3", "-c", script).stdout
    lines = out.strip().splitlines()
    site = lines[0]
    biggest = [
        f"{mb:>6} MB  {name.removeprefix(site + '/')}"
        for mb, name in (line.split("\t", 1) for line in lines[1:])
    ]
    return [f"largest in {site}:", *biggest]


# --- the checks -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def check_config(tag: str) -> None:
    """What `podman run IMAGE CMD` goes through: ENTRYPOINT, WORKDIR, PATH, the label."""
    info = json.loads(podman("image", "inspect", tag).stdout)[0]
    config = info.get("Config", {})
    expect(config.get("Entrypoint") == ["/usr/bin/tini", "--"], f"entrypoint {config}")
    expect(not config.get("Cmd") or config.get("Cmd") == ["/bin/bash"], f"cmd {config}")
    expect(config.get("WorkingDir") == "/opt/program", f"workdir {config.get('WorkingDir')}")
    labels = config.get("Labels") or info.get("Labels") or {}
    for label in ("accept-bind-to-port", "multi-models"):
        expect(
            labels.get(f"com.amazonaws.sagemaker.capabilities.{label}") == "true",
            f"labels {labels}",
        )
    expect("8080/tcp" in (config.get("ExposedPorts") or {}), f"ports {config}")
    out = podman(
        "run", "--rm", "--network", "none", tag, "sh", "-c",
        "tr '\\0' ' ' </proc/1/cmdline; echo; pwd; "
        "for c in train serve python3; do command -v $c; done; echo $PATH",
    ).stdout.splitlines()  # fmt: skip
    expect(out[0].startswith("/usr/bin/tini -- "), f"PID 1 is not tini: {out[0]!r}")
    expect(out[1] == "/opt/program", f"working directory {out[1]!r}")
    expect(out[2:4] == ["/opt/program/train", "/opt/program/serve"], f"entry points {out[2:4]}")
    expect(out[-1].split(":")[0] == "/opt/program", f"PATH {out[-1]}")
    say(f"config ok: PID 1 tini, WORKDIR /opt/program, PATH {out[-1]}, python3 {out[4]}")


def make_job(base: Path) -> None:
    """A tiny job whose /opt/ml folder belongs to another user, as a host user's would."""
    make_sample_data.write_job(base, HYPERPARAMETERS, n_train=64, n_val=16)
    for path in [base, *base.rglob("*")]:
        os.chown(path, OTHER_UID, OTHER_UID)
        path.chmod(0o755 if path.is_dir() else 0o644)


def train_argv(tag: str, base: Path, name: str) -> list[str]:
    return [
        "podman", "run", "--rm", "--name", name, "--network", "none",
        "-v", f"{base}:/opt/ml", "-v", f"{base / 'input'}:/opt/ml/input:ro",
        tag, "train",
    ]  # fmt: skip


def check_train(tag: str, base: Path, flavor: str) -> dict:
    """SIGTERM once a checkpoint is written, then a restart that resumes to the end."""
    checkpoints = base / "checkpoints"
    name = f"byoc-image-test-train-{flavor}"
    podman("rm", "-f", name, check=False)
    log1 = base.parent / f"train-{flavor}-1.log"
    started = time.monotonic()
    with log1.open("w") as out:
        proc = subprocess.Popen(
            train_argv(tag, base, name), stdout=out, stderr=subprocess.STDOUT, text=True
        )
        try:
            deadline = time.monotonic() + 600
            while not list(checkpoints.glob("*.ckpt")):
                if proc.poll() is not None:
                    raise Failure(
                        f"train exited {proc.returncode} before a checkpoint:\n"
                        + log1.read_text()[-4000:]
                    )
                expect(time.monotonic() < deadline, "no checkpoint within 600 s")
                time.sleep(0.2)
            first_ckpt = time.monotonic() - started
            podman("kill", "--signal", "TERM", name)
            sent = time.monotonic()
            code = proc.wait(timeout=60)
            stopped_in = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                podman("rm", "-f", name, check=False)
                proc.wait(timeout=30)
    out1 = log1.read_text()
    expect(code == 143, f"train after SIGTERM exited {code}, not 143:\n{out1[-4000:]}")
    expect(bool(list(checkpoints.glob("*.ckpt"))), "no checkpoint kept after SIGTERM")
    expect(not (base / "model" / "model.ckpt").exists(), "a model after SIGTERM")
    expect(not (base / "output" / "failure").exists(), "a failure file after SIGTERM")
    say(
        f"train ({flavor}): first checkpoint {first_ckpt:.1f} s after `podman run`; "
        f"SIGTERM -> exit 143 in {stopped_in:.1f} s, {len(list(checkpoints.glob('*.ckpt')))} "
        "checkpoint(s) kept"
    )

    started = time.monotonic()
    result = run(*train_argv(tag, base, name), check=False, timeout=900)
    took = time.monotonic() - started
    out2 = result.stdout + result.stderr
    (base.parent / f"train-{flavor}-2.log").write_text(out2)
    expect(
        result.returncode == 0, f"the restarted train exited {result.returncode}:\n{out2[-4000:]}"
    )
    expect(bool(re.search(r"\bresume\b", out2)), f"the restart did not resume:\n{out2[-4000:]}")
    model = base / "model"
    for name_ in ("model.ckpt", "labels.json"):
        path = model / name_
        expect(path.is_file(), f"no {path} on the host after training")
        mode = path.stat().st_mode
        expect(bool(mode & stat.S_IROTH), f"{path} is not readable by others: {oct(mode)}")
    expect(
        all(p.stat().st_uid == OTHER_UID for p in (base / "input").rglob("*")),
        "the job's input changed owner",
    )
    say(f"train ({flavor}): the restart resumed and wrote the model in {took:.1f} s (exit 0)")
    return {"train_restart_s": took}


def http(url: str, data: bytes | None = None, content_type: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ping(port: int, timeout: float, container: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError):
            if http(f"http://127.0.0.1:{port}/ping")[0] == 200:
                return time.monotonic() - started
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False)
        if state.stdout.strip() not in ("running", "created", "configured"):
            logs = podman("logs", container, check=False)
            raise Failure(f"{container} stopped before /ping answered:\n{logs.stderr[-4000:]}")
        time.sleep(0.1)
    raise Failure(f"/ping on 127.0.0.1:{port} did not answer 200 within {timeout:.0f} s")


def start_serve(tag: str, model: Path, name: str, container_port: int = 8080) -> tuple[int, float]:
    """`podman run -d ... serve`; its host port and the seconds until /ping answered."""
    podman("rm", "-f", name, check=False)
    port = free_port()
    env = ["-e", f"SAGEMAKER_BIND_TO_PORT={container_port}"] if container_port != 8080 else []
    started = time.monotonic()
    podman(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{container_port}",
        "-v", f"{model}:/opt/ml/model:ro", *env, tag, "serve",
    )  # fmt: skip
    wait_ping(port, 300, name)
    cold = time.monotonic() - started
    published = podman("port", name).stdout.split()
    addresses = [p for p in published if ":" in p]
    expect(
        bool(addresses) and all(a.startswith("127.0.0.1:") for a in addresses),
        f"{name} is published on {published}, not on 127.0.0.1 only",
    )
    return port, cold


def stop(name: str) -> tuple[int, float]:
    started = time.monotonic()
    podman("stop", "-t", "30", name, timeout=120)
    took = time.monotonic() - started
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())
    return code, took


def check_serve(tag: str, model: Path, flavor: str) -> dict:
    name = f"byoc-image-test-serve-{flavor}"
    try:
        port, cold = start_serve(tag, model, name)
        say(f"serve ({flavor}): cold start {cold:.1f} s (`podman run` to the first /ping 200)")
        for payload in sorted(PAYLOADS.iterdir()):
            content_type = CONTENT_TYPES[payload.suffix]
            status, body = http(
                f"http://127.0.0.1:{port}/invocations", payload.read_bytes(), content_type
            )
            expect(status == 200, f"/invocations {content_type}: HTTP {status} {body[:500]!r}")
            expect(bool(body.strip()), f"/invocations {content_type}: empty answer")
            if content_type == "application/json":
                json.loads(body)
            say(f"  /invocations {content_type}: 200 {body[:90].decode(errors='replace')!r}")
        code, took = stop(name)
        logs = podman("logs", name, check=False)
        expect(code == 0, f"serve exited {code} after stop -t 30:\n{logs.stderr[-3000:]}")
        expect(took < 30, f"stop took {took:.1f} s: SIGTERM did not stop serve, SIGKILL did")
        say(f"serve ({flavor}): stop -t 30 -> exit 0 in {took:.1f} s")
    finally:
        podman("rm", "-f", name, check=False)

    name = f"byoc-image-test-port-{flavor}"
    try:
        port, _ = start_serve(tag, model, name, container_port=8081)
        say(f"serve ({flavor}): SAGEMAKER_BIND_TO_PORT=8081 answered /ping")
        code, _ = stop(name)
        expect(code == 0, f"serve on port 8081 exited {code}")
    finally:
        podman("rm", "-f", name, check=False)
    return {"cold_start_s": cold}


def check_local_scripts(tag: str, work: Path) -> None:
    """train_local.sh, serve_local.sh and predict.sh against the image, with DOCKER=podman."""
    test_dir = work / "local_test_dir"
    make_sample_data.write_job(test_dir, {**HYPERPARAMETERS, "epochs": "1"}, 64, 16)
    port = free_port()
    env = {**os.environ, "DOCKER": "podman", "TEST_DIR": str(test_dir), "PORT": str(port)}
    scripts = ROOT / "local_test"
    result = run("bash", str(scripts / "train_local.sh"), tag, env=env, check=False, timeout=900)
    expect(result.returncode == 0, f"train_local.sh failed:\n{result.stderr[-4000:]}")
    expect((test_dir / "model" / "model.ckpt").is_file(), "train_local.sh wrote no model")
    log = (work / "serve_local.log").open("w")
    server = subprocess.Popen(
        ["bash", str(scripts / "serve_local.sh"), tag], env=env, stdout=log, stderr=log
    )
    try:
        started = time.monotonic()
        while True:
            with contextlib.suppress(OSError):
                if http(f"http://127.0.0.1:{port}/ping")[0] == 200:
                    break
            expect(server.poll() is None, "serve_local.sh exited before /ping answered")
            expect(time.monotonic() - started < 300, "serve_local.sh: no /ping within 300 s")
            time.sleep(0.2)
        for payload in sorted(PAYLOADS.iterdir()):
            result = run("bash", str(scripts / "predict.sh"), str(payload), env=env, check=False)
            expect(result.returncode == 0, f"predict.sh {payload.name}: {result.stderr}")
        published = podman("ps", "--filter", f"ancestor={tag}", "--format", "{{.Ports}}").stdout
        expect(f"127.0.0.1:{port}->" in published, f"serve_local.sh published {published!r}")
        server.terminate()  # podman run passes SIGTERM on to the container (--sig-proxy)
        code = server.wait(timeout=60)
        expect(code == 0, f"serve_local.sh exited {code} after SIGTERM")
    finally:
        if server.poll() is None:
            server.kill()
        for cid in podman("ps", "-q", "--filter", f"ancestor={tag}", check=False).stdout.split():
            podman("rm", "-f", cid, check=False)
        log.close()
    say(f"local_test scripts ok with DOCKER=podman (published on 127.0.0.1:{port})")


# --- main -----------------------------------------------------------------------------------
def build_image(flavor: str, base: str, log: Path) -> float:
    """The project's Dockerfile, unchanged, on a stand-in base; the CPU one takes torch from
    IMAGE_TEST_TORCH_INDEX_URL, else from the local index, reached over the host's network
    (loopback) during the build."""
    args = ["-f", str(ROOT / "Dockerfile"), "--build-arg", f"BASE_IMAGE={base}"]
    if flavor == "gpu":
        return build(args, f"{IMAGE}:{flavor}", ROOT, log)
    if TORCH_INDEX_URL:
        args += ["--build-arg", f"TORCH_INDEX_URL={TORCH_INDEX_URL}"]
        return build(args, f"{IMAGE}:{flavor}", ROOT, log)
    with serve_index(cpu_wheels()) as url:
        args += ["--network", "host", "--build-arg", f"TORCH_INDEX_URL={url}"]
        return build(args, f"{IMAGE}:{flavor}", ROOT, log)


def test_flavor(flavor: str, base: str, work: Path, scripts: bool) -> dict:
    tag = f"{IMAGE}:{flavor}"
    seconds = build_image(flavor, base, work / f"build-{flavor}.log")
    size, base_size = size_of(tag), size_of(base)
    say(f"built {tag} in {seconds:.0f} s: {gib(size)} ({gib(size - base_size)} over its base)")
    figures = {"build_s": seconds, "size": size, "added": size - base_size}
    figures["space"] = space_report(tag)
    check_config(tag)
    job = work / f"job-{flavor}"
    make_job(job)
    figures.update(check_train(tag, job, flavor))
    figures.update(check_serve(tag, job / "model", flavor))
    if scripts:
        check_local_scripts(tag, work)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavor", choices=["gpu", "cpu", "all"], default="all")
    parser.add_argument("--no-scripts", action="store_true", help="skip the local_test scripts")
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        ensure_tools()
        probe_podman(CACHE)
    except Skip as exc:
        required = os.environ.get("IMAGE_TEST_REQUIRE") == "1"
        banner(
            "IMAGE TEST FAILED (IMAGE_TEST_REQUIRE=1)" if required else "IMAGE TEST SKIPPED",
            ["podman cannot run containers on this machine:", *str(exc).splitlines()[:12],
             "Nothing was built or run: the image is NOT tested here."],
        )  # fmt: skip
        return 1 if required else 0
    results = {}
    try:
        t0 = time.monotonic()
        debian = ensure_debian()
        bases = ensure_standins(debian)
        standin_s = time.monotonic() - t0
        with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as tmp:
            work = Path(tmp)
            flavors = ["gpu", "cpu"] if args.flavor == "all" else [args.flavor]
            for flavor in flavors:
                base = bases["torch" if flavor == "gpu" else "python"]
                scripts = flavor == "gpu" and not args.no_scripts
                results[flavor] = test_flavor(flavor, base, work, scripts)
    except (Failure, subprocess.TimeoutExpired) as exc:
        banner("IMAGE TEST FAILED", str(exc).splitlines()[-80:])
        return 1
    lines = [f"stand-in bases ready in {standin_s:.0f} s (cached: a tag per content hash)"]
    for flavor, r in results.items():
        lines.append(
            f"{flavor}: build {r['build_s']:.0f} s, image {gib(r['size'])} "
            f"({gib(r['added'])} over its base), serve cold start {r['cold_start_s']:.1f} s, "
            f"train restart {r['train_restart_s']:.0f} s"
        )
        lines += [f"  {line}" for line in r["space"]]
    lines.append(f"total {time.monotonic() - started:.0f} s")
    banner("IMAGE TEST PASSED", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
