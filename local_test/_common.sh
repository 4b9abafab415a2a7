# shellcheck shell=bash
# Sourced by train_local.sh and serve_local.sh: paths, messages, argument parsing, the container
# CLI (Docker or podman), the GPU check and the sample job. Each script defines usage_text() before sourcing this file.
# The variables set here are read by the scripts that source it, not here:
# shellcheck disable=SC2034

local_test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$local_test_dir")
# The /opt/ml stand-in: mounted at /opt/ml in Docker mode, SAGEMAKER_BASE_DIR in local mode.
test_dir=${TEST_DIR:-$local_test_dir/test_dir}

bad_usage() { # bad_usage MESSAGE: the message, then the usage, on stderr; exit 2
    echo "$(basename "$0"): $1" >&2
    usage_text >&2
    exit 2
}

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

need() { # need COMMAND WHY
    command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}

# IMAGE (Docker mode) or --local / LOCAL=1 (no Docker): sets `mode` and `image`.
parse_image_or_local() {
    mode=docker
    image=""
    [ "${LOCAL:-0}" = 1 ] && mode=local
    case "$#:${1:-}" in
        1:-h | 1:--help)
            usage_text
            exit 0
            ;;
        1:--local) mode=local ;;
        1:-*) bad_usage "unknown option '$1'" ;;
        1:*)
            [ "$mode" = docker ] || bad_usage "LOCAL=1 runs without Docker: give no IMAGE"
            image=$1
            ;;
        0:) [ "$mode" = local ] || bad_usage "missing IMAGE (or --local to run without Docker)" ;;
        *) bad_usage "too many arguments" ;;
    esac
    if [ "$mode" = docker ]; then
        pick_docker
    else
        pick_python torch lightning pandas
    fi
}

# The Python that runs model/train, model/serve and the sample writer here: PYTHON when set,
# else the project's venv (make setup), else python3 from PATH. Sets `python`; with module
# names, it must find them (a Python without the project's packages would fail later with a
# traceback instead).
python=""
pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        python=$PYTHON
    elif [ -x "$repo_dir/.venv/bin/python" ]; then
        python=$repo_dir/.venv/bin/python
    else
        python=python3
    fi
    need "$python" "run make setup (it installs the project's Python into .venv), or set PYTHON"
    [ "$#" -eq 0 ] || "$python" - "$@" <<'PY' || die "$python lacks the project's packages: run make setup (it installs them into .venv), or set PYTHON to a Python that has them"
import importlib.util, sys
missing = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is None]
if missing:
    print("cannot import " + ", ".join(missing), file=sys.stderr)
sys.exit(1 if missing else 0)
PY
}

# The container CLI: DOCKER when set (DOCKER=podman), else docker, else podman, from PATH.
# Sets `docker`; both take the same `run` arguments used here.
docker=""
pick_docker() {
    if [ -n "${DOCKER:-}" ]; then
        need "$DOCKER" "DOCKER=$DOCKER names the container CLI to use"
        docker=$DOCKER
    elif command -v docker >/dev/null 2>&1; then
        docker=docker
    elif command -v podman >/dev/null 2>&1; then
        docker=podman
    else
        die "neither docker nor podman found on PATH: install Docker or Podman" \
            "(DOCKER=CLI picks one), or run with --local (no container)"
    fi
}

# The GPUs when nvidia-smi lists one: `--gpus all` for Docker, the CDI device for podman
# (nvidia-ctk cdi generate, once); nothing otherwise (the image also runs on CPU).
gpu_flags=()
detect_gpus() {
    local out
    gpu_flags=()
    if command -v nvidia-smi >/dev/null 2>&1 && out=$(nvidia-smi -L 2>/dev/null) &&
        grep -q '^GPU [0-9]' <<<"$out"; then
        if [ "$(basename "$docker")" = podman ]; then
            gpu_flags=(--device nvidia.com/gpu=all)
        else
            gpu_flags=(--gpus all)
        fi
        echo "NVIDIA GPU found: running with ${gpu_flags[*]}" >&2
    fi
}

# The sample job (config + train/validation channels) when test_dir has no input yet; an
# existing input/ is left alone, so edits to its hyperparameters.json or data stay.
ensure_sample_job() {
    if [ ! -d "$test_dir/input" ]; then
        [ -n "$python" ] || pick_python
        echo "no job in $test_dir yet: writing the sample one" >&2
        "$python" "$local_test_dir/make_sample_data.py" "$test_dir" >&2
    fi
}
