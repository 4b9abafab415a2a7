#!/usr/bin/env bash
# Serve the model in local_test/test_dir/model on http://127.0.0.1:${PORT:-8080}, as an endpoint
# would (GET /ping, POST /invocations); stop it with Ctrl-C:
#   local_test/serve_local.sh IMAGE     docker run -p 127.0.0.1:PORT:8080 IMAGE serve, test_dir
#                                       at /opt/ml, --gpus all when nvidia-smi finds a GPU;
#                                       podman when there is no docker on PATH, or DOCKER=podman
# The port is published on 127.0.0.1 only: PUBLISH_ADDRESS=0.0.0.0 opens it to the network.
#   local_test/serve_local.sh --local   model/serve with the project's .venv (or PYTHON, else
#                                       python3 from PATH), no Docker (LOCAL=1 does the same),
#                                       SAGEMAKER_BASE_DIR=test_dir
# Train first (local_test/train_local.sh); then send requests with local_test/predict.sh.
set -euo pipefail

usage_text() {
    echo "usage: $0 IMAGE      serve test_dir/model from the image IMAGE (Docker, or podman)"
    echo "       $0 --local    serve it with the project's .venv, no container (or LOCAL=1)"
    echo "  env: PORT (default 8080), TEST_DIR (default local_test/test_dir),"
    echo "       PUBLISH_ADDRESS (default 127.0.0.1), DOCKER (docker or podman),"
    echo "       PYTHON (--local: default .venv/bin/python, else python3),"
    echo "       PYTHONPATH (--local: where a plug-in kept outside the repository lives)"
}

# shellcheck source=local_test/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
parse_image_or_local "$@"

port=${PORT:-8080}
[[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
    die "PORT must be a port number (1-65535), got '$port'"
[ -n "$(ls -A "$test_dir/model" 2>/dev/null)" ] ||
    die "no model in $test_dir/model: train one first with local_test/train_local.sh"

address=${PUBLISH_ADDRESS:-127.0.0.1}
[[ $address =~ ^[0-9.]+$|^\[[0-9a-fA-F:]+\]$ ]] ||
    die "PUBLISH_ADDRESS must be an IP address (127.0.0.1, 0.0.0.0 or [::1]), got '$address'"

# The requests to try: local_test/payloads/ holds the text classifier's; any plug-in's own
# come from its sample.py.
plugin=$(sed -n 's/.*"plugin": *"\([A-Za-z0-9_.]*\)".*/\1/p' "$test_dir/model/plugin.json" 2>/dev/null || true)
if [ "${plugin:-text_classifier}" = text_classifier ]; then
    try="local_test/predict.sh local_test/payloads/sample.json"
else
    try="${python:-python3} local_test/make_sample_data.py --model $plugin --payloads DIR (writes its sample"
    try="$try requests, each printed with its content type), then local_test/predict.sh FILE TYPE"
fi
echo "serving $test_dir/model on http://127.0.0.1:$port (Ctrl-C stops it); try: $try" >&2
if [ "$mode" = docker ]; then
    detect_gpus
    exec "$docker" run --rm ${gpu_flags[@]+"${gpu_flags[@]}"} -p "$address:$port:8080" \
        -v "$test_dir:/opt/ml" "$image" serve
fi
[ -f "$repo_dir/model/serve" ] || die "$repo_dir/model/serve not found"
SAGEMAKER_BASE_DIR=$test_dir SAGEMAKER_BIND_TO_PORT=$port exec "$python" "$repo_dir/model/serve"
