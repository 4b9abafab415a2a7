#!/usr/bin/env bash
# The whole job on this machine, no Docker, CPU is enough (`make demo` runs this):
# write the sample job into local_test/test_dir, train on it, serve the model with nginx +
# gunicorn exactly as an endpoint would, send the sample payloads, stop the server.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PORT=${PORT:-8080}

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

for payload in "$here"/payloads/sample.json "$here"/payloads/sample.csv "$here"/payloads/sample.jsonl; do
    echo "--- $(basename "$payload")"
    "$here/predict.sh" "$payload"
    echo
done
echo "--- metrics of the trained model: $here/test_dir/output/data/metrics.json"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print({k: m[k] for k in ('accuracy','macro_f1','best_epoch','train_seconds')})" \
    "$here/test_dir/output/data/metrics.json"
