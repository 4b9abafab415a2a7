"""build_and_push.sh and local_test/*.sh against stub `docker`, `aws` and `nvidia-smi`.

The stubs are small bash scripts first on PATH: they append their argv to a log and answer
like the real CLIs (including their failures), steered by STUB_* environment variables.
The tests assert on the recorded calls. One test runs `train_local.sh --local` for real.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import helpers

ROOT = helpers.ROOT
BASH = shutil.which("bash")
ACCOUNT = "123456789012"
DLC = "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.13.0-gpu-py312-cu126"

STUBS = {
    "aws": r"""#!/usr/bin/env bash
log() { local IFS=$'\t'; printf 'aws\t%s\n' "$*" >>"$STUB_LOG"; }
log "$@"
case "$1 $2" in
"configure get")
    [ -n "${STUB_AWS_CONFIG_REGION:-}" ] || exit 1
    echo "$STUB_AWS_CONFIG_REGION" ;;
"sts get-caller-identity")
    if [ -n "${STUB_AWS_NO_CREDENTIALS:-}" ]; then
        echo 'Unable to locate credentials. You can configure credentials by running "aws configure".' >&2
        exit 255
    fi
    echo "@ACCOUNT@" ;;
"ecr describe-repositories")
    if [ -z "${STUB_ECR_REPO_EXISTS:-}" ]; then
        echo "An error occurred (RepositoryNotFoundException) when calling the DescribeRepositories operation: The repository with name 'x' does not exist in the registry with id '@ACCOUNT@'" >&2
        exit 254
    fi
    echo '{"repositories": [{"repositoryName": "x"}]}' ;;
"ecr create-repository")
    if [ -n "${STUB_ECR_CREATE_RACE:-}" ]; then
        echo "An error occurred (RepositoryAlreadyExistsException) when calling the CreateRepository operation: The repository with name 'x' already exists in the registry with id '@ACCOUNT@'" >&2
        exit 254
    fi
    echo '{"repository": {"repositoryName": "x"}}' ;;
"ecr get-login-password")
    region=""
    while [ $# -gt 0 ]; do [ "$1" = --region ] && region=$2; shift; done
    echo "token-for-${region:-none}" ;;
*) echo "aws stub: unexpected call: $*" >&2; exit 252 ;;
esac
""".replace("@ACCOUNT@", ACCOUNT),
    "docker": r"""#!/usr/bin/env bash
log() { local IFS=$'\t'; printf 'docker\t%s\n' "$*" >>"$STUB_LOG"; }
case "$1" in
info)
    log "$@"
    if [ -n "${STUB_DOCKER_DOWN:-}" ]; then
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1
    fi
    echo "Server Version: 27.0.0" ;;
login)
    log "$@" "stdin=$(cat)"
    echo "Login Succeeded" ;;
build | tag | push)
    log "$@"
    echo "stub docker $1 output on stdout"
    [ "${STUB_DOCKER_FAIL:-}" = "$1" ] && { echo "stub: $1 failed" >&2; exit 1; }
    exit 0 ;;
run)
    log "$@"
    echo "stub container output"
    if [ -n "${STUB_RUN_EXIT:-}" ]; then
        # Like a failed training job: the reason lands in /opt/ml/output/failure.
        prev=""
        for arg in "$@"; do
            if [ "$prev" = -v ] && [[ $arg == *:/opt/ml ]]; then
                echo "stub failure reason" >"${arg%:/opt/ml}/output/failure"
            fi
            prev=$arg
        done
        exit "$STUB_RUN_EXIT"
    fi ;;
*) log "$@"; echo "docker stub: unexpected call: $*" >&2; exit 125 ;;
esac
""",
    "nvidia-smi": r"""#!/usr/bin/env bash
printf 'nvidia-smi\t%s\n' "$*" >>"$STUB_LOG"
if [ -n "${STUB_GPU:-}" ]; then
    echo "GPU 0: NVIDIA A10G (UUID: GPU-6f0e2b1c-0000-0000-0000-000000000000)"
else
    echo "No devices were found"
    exit 6
fi
""",
}


# podman answers the same calls as docker here; its calls are logged under its own name.
STUBS["podman"] = STUBS["docker"].replace("printf 'docker\\t", "printf 'podman\\t")


@pytest.fixture
def stubs(tmp_path):
    """A bin dir with the stubs and a `run(script, *args, tools=..., **env)` that uses it."""
    bin_dir = tmp_path / "stub_bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    log.touch()

    def install(tools):
        for old in bin_dir.iterdir():
            old.unlink()
        for name in tools:
            (bin_dir / name).write_text(STUBS[name])
            (bin_dir / name).chmod(0o755)

    def run(script, *args, tools=("aws", "docker", "nvidia-smi"), path=None, stdin=None, **env):
        install(tools)
        full_env = {
            "PATH": path or f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "STUB_LOG": str(log),
        }
        full_env.update({k: str(v) for k, v in env.items()})
        result = subprocess.run(
            [BASH, str(script), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
        )
        result.calls = [line.split("\t") for line in log.read_text().splitlines()]
        log.write_text("")
        return result

    run.bin_dir = bin_dir
    run.bare_path = _bare_path(tmp_path / "bare_bin")
    return run


def _bare_path(folder: Path) -> str:
    """A PATH of stubs plus the basic tools the scripts use, and nothing else (no real
    docker, aws or python3), to test what happens when a CLI is missing."""
    folder.mkdir()
    for tool in ("bash", "dirname", "basename", "rm", "mkdir", "ls", "head", "cat", "sed", "grep"):
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return str(folder)


def calls_of(result, tool: str) -> list[list[str]]:
    return [c[1:] for c in result.calls if c[0] == tool]


# --- build_and_push.sh --------------------------------------------------------------------
BUILD = ROOT / "build_and_push.sh"


def test_build_and_push_creates_the_repository_logs_in_builds_tags_pushes(stubs):
    result = stubs(BUILD, "byoc-text", "v1", AWS_REGION="eu-west-1")
    assert result.returncode == 0, result.stderr
    registry = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
    uri = f"{registry}/byoc-text:v1"
    assert result.stdout.splitlines() == [uri], "stdout is the image URI only, printed last"
    aws = calls_of(result, "aws")
    assert aws[0] == ["sts", "get-caller-identity", "--query", "Account", "--output", "text"]
    assert aws[1][:2] == ["ecr", "describe-repositories"] and "byoc-text" in aws[1]
    assert aws[2][:2] == ["ecr", "create-repository"]
    assert aws[2][aws[2].index("--repository-name") + 1] == "byoc-text"
    assert aws[2][aws[2].index("--region") + 1] == "eu-west-1"
    assert aws[3] == ["ecr", "get-login-password", "--region", "eu-west-1"]
    assert len(aws) == 4, "the region came from AWS_REGION: no aws configure call"
    docker = calls_of(result, "docker")
    assert [c[0] for c in docker] == ["info", "login", "build", "tag", "push"]
    assert docker[1] == [
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        registry,
        "stdin=token-for-eu-west-1",
    ]
    build = docker[2]
    assert build[build.index("--platform") + 1] == "linux/amd64"
    assert build[build.index("-t") + 1] == "byoc-text:v1"
    assert build[-1] == str(ROOT)
    assert "--build-arg" not in build, "the Dockerfile's own base image"
    assert docker[3] == ["tag", "byoc-text:v1", uri]
    assert docker[4] == ["push", uri]


def test_build_and_push_keeps_an_existing_repository_and_defaults_the_tag(stubs):
    result = stubs(BUILD, "byoc-text", AWS_REGION="us-east-1", STUB_ECR_REPO_EXISTS=1)
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls_of(result, "aws") if c[:2] == ["ecr", "create-repository"]]
    assert result.stdout.strip() == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/byoc-text:latest"


def test_build_and_push_accepts_a_repository_created_meanwhile(stubs):
    result = stubs(BUILD, "byoc-text", AWS_REGION="us-east-1", STUB_ECR_CREATE_RACE=1)
    assert result.returncode == 0, result.stderr
    assert [c[0] for c in calls_of(result, "docker")][-1] == "push"


def test_build_and_push_region_from_default_region_then_aws_config(stubs):
    result = stubs(BUILD, "x", AWS_DEFAULT_REGION="ap-south-1", STUB_ECR_REPO_EXISTS=1)
    assert result.stdout.strip().startswith(f"{ACCOUNT}.dkr.ecr.ap-south-1.amazonaws.com/")
    result = stubs(BUILD, "x", STUB_AWS_CONFIG_REGION="sa-east-1", STUB_ECR_REPO_EXISTS=1)
    assert result.returncode == 0, result.stderr
    assert calls_of(result, "aws")[0] == ["configure", "get", "region"]
    assert result.stdout.strip() == f"{ACCOUNT}.dkr.ecr.sa-east-1.amazonaws.com/x:latest"


def test_build_and_push_china_regions_use_their_domain(stubs):
    result = stubs(BUILD, "x", AWS_REGION="cn-north-1", STUB_ECR_REPO_EXISTS=1)
    assert result.stdout.strip() == f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn/x:latest"


def test_build_and_push_logs_in_to_a_dlc_base_image_registry(stubs):
    result = stubs(BUILD, "x", AWS_REGION="eu-west-1", STUB_ECR_REPO_EXISTS=1, BASE_IMAGE=DLC)
    assert result.returncode == 0, result.stderr
    docker = calls_of(result, "docker")
    logins = [c[-2:] for c in docker if c[0] == "login"]
    assert logins == [
        ["763104351884.dkr.ecr.us-west-2.amazonaws.com", "stdin=token-for-us-west-2"],
        [f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com", "stdin=token-for-eu-west-1"],
    ]
    build = next(c for c in docker if c[0] == "build")
    assert build[build.index("--build-arg") + 1] == f"BASE_IMAGE={DLC}"
    assert [c[0] for c in docker].index("build") > 2, "logged in before the build"


def test_build_and_push_reads_the_base_image_from_the_dockerfile(stubs, tmp_path):
    """A Dockerfile whose default base is a DLC image gets the DLC login without BASE_IMAGE."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy2(BUILD, copy / BUILD.name)
    text = (ROOT / "Dockerfile").read_text()
    assert "\nARG BASE_IMAGE=" in text
    lines = [
        f"ARG BASE_IMAGE={DLC}" if ln.startswith("ARG BASE_IMAGE=") else ln
        for ln in text.splitlines()
    ]
    (copy / "Dockerfile").write_text("\n".join(lines) + "\n")
    result = stubs(copy / BUILD.name, "x", AWS_REGION="us-west-2", STUB_ECR_REPO_EXISTS=1)
    assert result.returncode == 0, result.stderr
    logins = [c[4] for c in calls_of(result, "docker") if c[0] == "login"]
    assert logins == [
        "763104351884.dkr.ecr.us-west-2.amazonaws.com",
        f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com",
    ]
    build = next(c for c in calls_of(result, "docker") if c[0] == "build")
    assert "--build-arg" not in build and build[-1] == str(copy)


def test_build_and_push_cpu_builds_on_a_slim_python_base_under_its_own_tag(stubs):
    result = stubs(
        BUILD, "--cpu", "byoc-text", "v1", AWS_REGION="eu-west-1", STUB_ECR_REPO_EXISTS=1
    )
    assert result.returncode == 0, result.stderr
    uri = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/byoc-text:v1-cpu"
    assert result.stdout.splitlines() == [uri]
    docker = calls_of(result, "docker")
    build = next(c for c in docker if c[0] == "build")
    assert build[build.index("-t") + 1] == "byoc-text:v1-cpu"
    args = [build[i + 1] for i, a in enumerate(build) if a == "--build-arg"]
    assert args == ["BASE_IMAGE=python:3.12-slim"], "the Dockerfile's CPU wheel index"
    assert docker[-1] == ["push", uri]
    logins = [c[4] for c in docker if c[0] == "login"]
    assert logins == [f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"], "Docker Hub needs none"


def test_build_and_push_cpu_defaults_to_latest_cpu_and_takes_base_and_index(stubs):
    result = stubs(
        BUILD,
        "--cpu",
        "x",
        AWS_REGION="eu-west-1",
        STUB_ECR_REPO_EXISTS=1,
        BASE_IMAGE="python:3.11-slim",
        TORCH_INDEX_URL="https://mirror.example/whl/cpu",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("/x:latest-cpu")
    build = next(c for c in calls_of(result, "docker") if c[0] == "build")
    args = [build[i + 1] for i, a in enumerate(build) if a == "--build-arg"]
    assert args == ["BASE_IMAGE=python:3.11-slim", "TORCH_INDEX_URL=https://mirror.example/whl/cpu"]


def test_build_and_push_refuses_an_index_url_with_credentials(stubs):
    """A build argument is recorded in `docker history`, which ECR serves to every puller."""
    result = stubs(
        BUILD,
        "--cpu",
        "x",
        AWS_REGION="eu-west-1",
        STUB_ECR_REPO_EXISTS=1,
        TORCH_INDEX_URL="https://me:s3cret@mirror.example/whl/cpu",
    )
    assert result.returncode == 1
    assert "TORCH_INDEX_URL holds credentials" in result.stderr
    assert not [c for c in calls_of(result, "docker") if c[0] == "build"]


def test_build_and_push_cpu_base_matches_the_dockerfile_comment():
    text = BUILD.read_text()
    base = text.split("\nCPU_BASE_IMAGE=", 1)[1].split()[0]
    assert f"--build-arg BASE_IMAGE={base} " in (ROOT / "Dockerfile").read_text()


def test_build_and_push_with_podman_builds_in_docker_format(stubs):
    result = stubs(
        BUILD, "x", tools=("aws", "podman"), AWS_REGION="eu-west-1", STUB_ECR_REPO_EXISTS=1,
        DOCKER="podman",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    podman = calls_of(result, "podman")
    assert [c[0] for c in podman] == ["info", "login", "build", "tag", "push"]
    build = podman[2]
    assert build[build.index("--format") + 1] == "docker", "else podman drops SHELL"


def test_build_and_push_without_credentials_says_so_and_builds_nothing(stubs):
    result = stubs(BUILD, "x", AWS_REGION="eu-west-1", STUB_AWS_NO_CREDENTIALS=1)
    assert result.returncode == 1
    assert "no usable AWS credentials" in result.stderr
    assert "Unable to locate credentials" in result.stderr
    assert [c[0] for c in calls_of(result, "docker")] == ["info"]
    assert result.stdout == ""


def test_build_and_push_without_a_region_says_so(stubs):
    result = stubs(BUILD, "x")
    assert result.returncode == 1
    assert "no AWS region" in result.stderr and "AWS_REGION" in result.stderr
    assert not calls_of(result, "docker")[1:]


def test_build_and_push_stops_when_the_build_fails(stubs):
    result = stubs(
        BUILD, "x", AWS_REGION="eu-west-1", STUB_ECR_REPO_EXISTS=1, STUB_DOCKER_FAIL="build"
    )
    assert result.returncode != 0
    assert [c[0] for c in calls_of(result, "docker")][-1] == "build"
    assert result.stdout == "", "no URI for an image that was not pushed"


def test_build_and_push_when_the_docker_daemon_is_down(stubs):
    result = stubs(BUILD, "x", AWS_REGION="eu-west-1", STUB_DOCKER_DOWN=1)
    assert result.returncode == 1 and "cannot reach the Docker daemon" in result.stderr
    assert not calls_of(result, "aws")


@pytest.mark.parametrize(
    "missing, message", [("docker", "docker not found on PATH"), ("aws", "aws CLI not found")]
)
def test_build_and_push_names_a_missing_cli(stubs, missing, message):
    # No real docker or aws anywhere on this PATH.
    present = [t for t in ("aws", "docker") if t != missing]
    path = f"{stubs.bin_dir}:{stubs.bare_path}"
    result = stubs(BUILD, "x", tools=present, path=path, AWS_REGION="eu-west-1")
    assert result.returncode == 1
    assert message in result.stderr
    assert not result.calls


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "missing IMAGE_NAME"),
        (["--cpu"], "missing IMAGE_NAME"),
        (["a", "b", "c"], "too many arguments"),
        (["--cpu", "a", "b", "c"], "too many arguments"),
        (["--push"], "unknown option"),
        (["--cpu", "--cpu", "a"], "unknown option"),
    ],
)
def test_build_and_push_usage(stubs, args, message):
    result = stubs(BUILD, *args, AWS_REGION="eu-west-1")
    assert result.returncode == 2
    assert message in result.stderr and "usage: " in result.stderr
    assert not result.calls


@pytest.mark.parametrize("args", [["My_Image"], ["-x"], ["ok", "bad tag"], ["ok", ".dot"]])
def test_build_and_push_rejects_invalid_names_before_any_call(stubs, args):
    result = stubs(BUILD, *args, AWS_REGION="eu-west-1")
    assert result.returncode in (1, 2)
    assert "invalid" in result.stderr or "usage: " in result.stderr
    assert not result.calls


# --- local_test/train_local.sh and serve_local.sh in Docker mode ---------------------------
TRAIN = ROOT / "local_test" / "train_local.sh"
SERVE = ROOT / "local_test" / "serve_local.sh"
PREDICT = ROOT / "local_test" / "predict.sh"


@pytest.mark.parametrize("gpu", [False, True])
def test_train_local_runs_the_image_with_test_dir_at_opt_ml(stubs, tmp_path, gpu):
    test_dir = tmp_path / "test_dir"
    (test_dir / "model").mkdir(parents=True)
    (test_dir / "model" / "stale.ckpt").write_text("from an earlier run")
    extra = {"STUB_GPU": 1} if gpu else {}
    result = stubs(TRAIN, "my-image:dev", TEST_DIR=test_dir, **extra)
    assert result.returncode == 0, result.stderr
    assert (test_dir / "input/config/hyperparameters.json").is_file(), "sample job written"
    assert (test_dir / "input/data/train/train.csv").is_file()
    assert not (test_dir / "model" / "stale.ckpt").exists(), "each run starts fresh"
    (run,) = calls_of(result, "docker")
    expected = ["run", "--rm", *(["--gpus", "all"] if gpu else []), "-v", f"{test_dir}:/opt/ml"]
    assert run == [*expected, "my-image:dev", "train"]
    assert calls_of(result, "nvidia-smi") == [["-L"]]


def test_train_local_reports_the_failure_reason_and_exit_status(stubs, tmp_path):
    test_dir = tmp_path / "test_dir"
    result = stubs(TRAIN, "img", TEST_DIR=test_dir, STUB_RUN_EXIT=3)
    assert result.returncode == 3
    assert "training failed: stub failure reason" in result.stderr


def test_train_local_docker_mode_needs_docker_or_podman(stubs, tmp_path):
    path = f"{stubs.bin_dir}:{stubs.bare_path}"
    result = stubs(TRAIN, "img", tools=("aws",), TEST_DIR=tmp_path, path=path)
    assert result.returncode == 1
    assert "neither docker nor podman found on PATH" in result.stderr
    assert "--local" in result.stderr


@pytest.mark.parametrize("gpu", [False, True])
@pytest.mark.parametrize("how", ["DOCKER=podman", "no docker on PATH"])
def test_local_scripts_run_podman(stubs, tmp_path, how, gpu):
    """DOCKER=podman, or podman alone on PATH: the same runs, GPUs through podman's CDI
    device instead of Docker's --gpus."""
    test_dir = tmp_path / "test_dir"
    path = f"{stubs.bin_dir}:{Path(sys.executable).parent}:{stubs.bare_path}"
    if how == "DOCKER=podman":
        tools, env = ("docker", "podman", "nvidia-smi"), {"DOCKER": "podman"}
    else:
        tools, env = ("podman", "nvidia-smi"), {}
    env.update({"STUB_GPU": 1} if gpu else {})
    gpus = ["--device", "nvidia.com/gpu=all"] if gpu else []
    result = stubs(TRAIN, "img", tools=tools, path=path, TEST_DIR=test_dir, **env)
    assert result.returncode == 0, result.stderr
    assert not calls_of(result, "docker")
    assert calls_of(result, "podman") == [
        ["run", "--rm", *gpus, "-v", f"{test_dir}:/opt/ml", "img", "train"]
    ]
    (test_dir / "model" / "model.ckpt").write_text("weights")  # what the stub did not train
    result = stubs(SERVE, "img", tools=tools, path=path, TEST_DIR=test_dir, PORT=9093, **env)
    assert result.returncode == 0, result.stderr
    (run,) = calls_of(result, "podman")
    assert run[: 4 + len(gpus)] == ["run", "--rm", *gpus, "-p", "127.0.0.1:9093:8080"]


def test_local_scripts_name_a_missing_docker_cli(stubs, tmp_path):
    result = stubs(TRAIN, "img", TEST_DIR=tmp_path, DOCKER="nerdctl-missing")
    assert result.returncode == 1
    assert "nerdctl-missing not found on PATH" in result.stderr and "DOCKER=" in result.stderr


@pytest.mark.parametrize(
    "args, env, message",
    [
        ([], {}, "missing IMAGE"),
        (["a", "b"], {}, "too many arguments"),
        (["--gpu"], {}, "unknown option"),
        (["img"], {"LOCAL": "1"}, "give no IMAGE"),
    ],
)
@pytest.mark.parametrize("script", [TRAIN, SERVE], ids=["train", "serve"])
def test_local_scripts_usage(stubs, tmp_path, script, args, env, message):
    result = stubs(script, *args, TEST_DIR=tmp_path / "t", **env)
    assert result.returncode == 2
    assert message in result.stderr and "usage: " in result.stderr
    assert not result.calls and not (tmp_path / "t").exists()


@pytest.mark.parametrize("gpu", [False, True])
def test_serve_local_runs_the_image_on_the_port(stubs, tmp_path, gpu):
    test_dir = tmp_path / "test_dir"
    (test_dir / "model").mkdir(parents=True)
    (test_dir / "model" / "model.ckpt").write_text("weights")
    extra = {"STUB_GPU": 1} if gpu else {}
    result = stubs(SERVE, "img", TEST_DIR=test_dir, PORT=9091, **extra)
    assert result.returncode == 0, result.stderr
    (run,) = calls_of(result, "docker")
    gpus = ["--gpus", "all"] if gpu else []
    assert run == [
        "run",
        "--rm",
        *gpus,
        "-p",
        "127.0.0.1:9091:8080",
        "-v",
        f"{test_dir}:/opt/ml",
        "img",
        "serve",
    ], "published on 127.0.0.1 only"


def test_serve_local_publishes_on_another_address_when_asked(stubs, tmp_path):
    test_dir = tmp_path / "test_dir"
    (test_dir / "model").mkdir(parents=True)
    (test_dir / "model" / "model.ckpt").write_text("weights")
    result = stubs(SERVE, "img", TEST_DIR=test_dir, PORT=9091, PUBLISH_ADDRESS="0.0.0.0")
    assert result.returncode == 0, result.stderr
    (run,) = calls_of(result, "docker")
    assert run[run.index("-p") + 1] == "0.0.0.0:9091:8080"
    result = stubs(SERVE, "img", TEST_DIR=test_dir, PUBLISH_ADDRESS="localhost; rm")
    assert result.returncode == 1 and "PUBLISH_ADDRESS must be an IP address" in result.stderr
    assert not calls_of(result, "docker")


@pytest.mark.parametrize("mode", [["img"], ["--local"]])
def test_serve_local_without_a_model_says_to_train_first(stubs, tmp_path, mode):
    result = stubs(SERVE, *mode, TEST_DIR=tmp_path / "empty")
    assert result.returncode == 1
    assert "no model in" in result.stderr and "train_local.sh" in result.stderr
    assert not calls_of(result, "docker")


def test_serve_local_rejects_a_bad_port(stubs, tmp_path):
    result = stubs(SERVE, "img", TEST_DIR=tmp_path, PORT="80a")
    assert result.returncode == 1 and "PORT must be a port number" in result.stderr


def test_local_mode_runs_the_entry_point_with_the_base_dir_and_port(stubs, tmp_path):
    """--local / LOCAL=1 wiring, with a stand-in model/serve beside a copy of local_test/."""
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT / "local_test", repo / "local_test", ignore=shutil.ignore_patterns("test_dir")
    )
    (repo / "model").mkdir()
    (repo / "model" / "serve").write_text(
        "import os, sys\n"
        "print(os.environ['SAGEMAKER_BASE_DIR'], os.environ['SAGEMAKER_BIND_TO_PORT'], sys.argv[1:])\n"
    )
    test_dir = tmp_path / "td"
    (test_dir / "model").mkdir(parents=True)
    (test_dir / "model" / "model.ckpt").write_text("weights")
    for args, env in (["--local"], {}), ([], {"LOCAL": "1"}):
        result = stubs(
            repo / "local_test" / "serve_local.sh", *args, TEST_DIR=test_dir, PORT=9092, **env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{test_dir} 9092 []"
        assert not calls_of(result, "docker")


def _stand_in_repo(tmp_path: Path, plugin: str = "text_classifier") -> tuple[Path, Path]:
    """A copy of local_test/ beside a stand-in model/serve that prints which Python runs
    it, and a test_dir holding a model of `plugin`."""
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT / "local_test", repo / "local_test", ignore=shutil.ignore_patterns("test_dir*")
    )
    (repo / "model").mkdir()
    (repo / "model" / "serve").write_text("import sys\nprint(sys.executable)\n")
    test_dir = tmp_path / "td"
    (test_dir / "model").mkdir(parents=True)
    (test_dir / "model" / "plugin.json").write_text(json.dumps({"plugin": plugin}))
    return repo, test_dir


def test_local_mode_prefers_the_projects_venv_to_pythons_on_path(stubs, tmp_path):
    """A newcomer's PATH starts with the system python3, which has none of the project's
    packages; --local runs the project's .venv (make setup) anyway, or PYTHON."""
    repo, test_dir = _stand_in_repo(tmp_path)
    venv_python = repo / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a venv's stand-in
    venv_python.chmod(0o755)
    path = f"{tmp_path / 'stub_bin'}:/usr/bin:/bin"  # python3 here: the system's
    serve = repo / "local_test" / "serve_local.sh"
    result = stubs(serve, "--local", TEST_DIR=test_dir, path=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable  # the venv's Python ran it
    result = stubs(serve, "--local", TEST_DIR=test_dir, path=path, PYTHON=sys.executable)
    assert result.returncode == 0 and result.stdout.strip() == sys.executable, result.stderr


@pytest.mark.skipif(
    subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0,
    reason="the system python3 has torch: it could run the project",
)
def test_local_mode_without_the_projects_packages_says_to_run_make_setup(stubs, tmp_path):
    repo, test_dir = _stand_in_repo(tmp_path)  # no .venv
    path = f"{tmp_path / 'stub_bin'}:/usr/bin:/bin"
    for script in ("serve_local.sh", "train_local.sh"):
        result = stubs(repo / "local_test" / script, "--local", TEST_DIR=test_dir, path=path)
        assert result.returncode == 1, result.stderr
        assert "cannot import torch" in result.stderr
        assert "lacks the project's packages: run make setup" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("plugin", ["text_classifier", "tabular"])
def test_serve_local_suggests_requests_the_served_plugin_understands(stubs, tmp_path, plugin):
    repo, test_dir = _stand_in_repo(tmp_path, plugin)
    result = stubs(repo / "local_test" / "serve_local.sh", "--local", TEST_DIR=test_dir)
    assert result.returncode == 0, result.stderr
    if plugin == "text_classifier":
        assert "try: local_test/predict.sh local_test/payloads/sample.json" in result.stderr
    else:
        assert "local_test/payloads/sample.json" not in result.stderr
        assert f"local_test/make_sample_data.py --model {plugin} --payloads DIR" in result.stderr


# --- local_test/predict.sh against a small HTTP server -------------------------------------
@pytest.fixture
def server():
    """An HTTP server that records each POST in `.requests` and answers with `.status`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            httpd.requests.append((self.path, self.headers["Content-Type"], body))
            if httpd.status == 200:
                answer = json.dumps({"predictions": [{"label": "shipping"}]}).encode()
            else:
                answer = b'{"error": "unsupported content type"}'
            self.send_response(httpd.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests, httpd.status = [], 200
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "name, content_type",
    [
        ("sample.json", "application/json"),
        ("sample.csv", "text/csv"),
        ("sample.jsonl", "application/jsonlines"),
        ("sample.txt", "text/plain"),
    ],
)
def test_predict_posts_the_file_with_its_content_type(stubs, server, name, content_type):
    payload = ROOT / "local_test" / "payloads" / name
    result = stubs(PREDICT, payload, PORT=server.server_address[1])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": [{"label": "shipping"}]}
    assert server.requests == [("/invocations", content_type, payload.read_bytes())]


def test_predict_content_type_argument_wins(stubs, server, tmp_path):
    payload = tmp_path / "rows.data"
    payload.write_text("a,b\n")
    result = stubs(PREDICT, payload, "text/csv", PORT=server.server_address[1])
    assert result.returncode == 0, result.stderr
    assert server.requests[0][1] == "text/csv"


def test_predict_shows_the_error_answer_and_fails(stubs, server):
    server.status = 415
    payload = ROOT / "local_test" / "payloads" / "sample.json"
    result = stubs(PREDICT, payload, PORT=server.server_address[1])
    assert result.returncode == 1
    assert "HTTP 415" in result.stderr and "unsupported content type" in result.stderr
    assert result.stdout == ""


def test_predict_without_a_server_says_so(stubs):
    payload = ROOT / "local_test" / "payloads" / "sample.json"
    result = stubs(PREDICT, payload, PORT=helpers.free_port())
    assert result.returncode == 1 and "is the server running?" in result.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([], 2, "missing FILE"),
        (["/no/such/file"], 1, "no readable file"),
        (["a", "b", "c"], 2, "too many"),
    ],
)
def test_predict_usage(stubs, args, code, message):
    result = stubs(PREDICT, *args)
    assert result.returncode == code and message in result.stderr


def test_payload_samples_are_valid():
    payloads = ROOT / "local_test" / "payloads"
    assert json.loads((payloads / "sample.json").read_text())["inputs"]
    for line in (payloads / "sample.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line)["inputs"], str)


# --- train_local.sh --local, for real -----------------------------------------------------
def test_train_local_without_docker_writes_the_model_into_test_dir(stubs, tmp_path, tiny_backbone):
    test_dir = tmp_path / "test_dir"
    helpers.write_sample_job(
        test_dir, {"backbone": str(tiny_backbone), "epochs": "1", "max_length": "32"}, 32, 16
    )
    result = stubs(
        TRAIN,
        "--local",
        TEST_DIR=test_dir,
        HF_HUB_OFFLINE=1,
        TOKENIZERS_PARALLELISM="false",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (test_dir / "model" / "model.ckpt").is_file()
    assert (test_dir / "model" / "labels.json").is_file()
    assert "model written to" in result.stderr
    assert not calls_of(result, "docker"), "no Docker in local mode"


def test_train_local_without_docker_reports_a_bad_hyperparameter(stubs, tmp_path):
    test_dir = tmp_path / "test_dir"
    helpers.write_sample_job(test_dir, {"epochs": "many"})
    result = stubs(TRAIN, "--local", TEST_DIR=test_dir)
    assert result.returncode != 0
    assert "training failed:" in result.stderr and "epochs" in result.stderr
