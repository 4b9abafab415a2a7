#!/usr/bin/env bash
# The whole job on this machine, no Docker, CPU is enough (`make demo` runs this):
# write the sample job into local_test/test_dir, train on it, serve the model with nginx +
# gunicorn exactly as an endpoint would, send the plug-in's sample requests, stop the server.
# MODEL=NAME demonstrates another plug-in (`make demo MODEL=image_classifier`), in
# local_test/test_dir_NAME unless TEST_DIR says where.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PORT=${PORT:-8080}
model=${MODEL:-text_classifier}
[[ $model =~ ^[A-Za-z_][A-Za-z0-9_.]*$ ]] || {
    echo "$(basename "$0"): MODEL must be a plug-in name, got '$model'" >&2
    exit 2
}
export MODEL=$model
if [ "$model" = text_classifier ]; then
    export TEST_DIR=${TEST_DIR:-$here/test_dir}
else
    export TEST_DIR=${TEST_DIR:-$here/test_dir_$model}
fi

usage_text() { echo "usage: [MODEL=NAME] [TEST_DIR=DIR] [PORT=N] $0"; }
# shellcheck source=local_test/_common.sh
source "$here/_common.sh"
pick_python torch lightning pandas # the project's .venv, or PYTHON: the same for every step
export PYTHON=$python

"$here/train_local.sh" --local

log=$(mktemp)
"$here/serve_local.sh" --local >"$log" 2>&1 &
server=$!
stop_server() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
trap stop_server EXIT

printf 'waiting for http://localhost:%s/ping' "$PORT" >&2
for _ in $(seq 1 600); do
    if curl -fs "http://localhost:$PORT/ping" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        printf '\nthe server stopped; its log:\n' >&2
        cat "$log" >&2
        exit 1
    fi
    printf '.' >&2
    sleep 0.2
done
printf ' ready\n' >&2

# The plug-in's sample requests (sample.py's PAYLOADS), each with its content type.
requests=$("$python" "$here/make_sample_data.py" --model "$model" --payloads "$TEST_DIR/requests")
while read -r payload content_type; do
    echo "--- $(basename "$payload") ($content_type)"
    "$here/predict.sh" "$payload" "$content_type"
    echo
done <<<"$requests"
echo "--- metrics of the trained model: $TEST_DIR/output/data/metrics.json"
"$python" -c "import json,sys; m=json.load(open(sys.argv[1])); print({k: m[k] for k in ('val_accuracy','val_f1','val_rmse','best_epoch','train_rows','train_seconds') if k in m})" \
    "$TEST_DIR/output/data/metrics.json"
