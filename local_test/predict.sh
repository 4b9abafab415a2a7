#!/usr/bin/env bash
# Send FILE to a running server (local_test/serve_local.sh) and print the answer:
#   local_test/predict.sh FILE [CONTENT_TYPE]
# POSTs to http://127.0.0.1:${PORT:-8080}/invocations. CONTENT_TYPE defaults by extension:
# .json application/json, .csv text/csv, .jsonl application/jsonlines, else text/plain.
# ACCEPT=TYPE sets the Accept header. Exits non-zero, with the server's answer on stderr, when
# the status is not 2xx.
set -euo pipefail

usage_text() {
    echo "usage: $0 FILE [CONTENT_TYPE]"
    echo "  POSTs FILE to http://127.0.0.1:\${PORT:-8080}/invocations and prints the answer;"
    echo "  CONTENT_TYPE by extension: .json application/json, .csv text/csv,"
    echo "  .jsonl application/jsonlines, else text/plain. env: PORT, ACCEPT"
}

bad_usage() {
    echo "$(basename "$0"): $1" >&2
    usage_text >&2
    exit 2
}

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

case "${1:-}" in
    -h | --help)
        usage_text
        exit 0
        ;;
    "") bad_usage "missing FILE" ;;
    -*) bad_usage "unknown option '$1'" ;;
esac
[ $# -le 2 ] || bad_usage "too many arguments"
file=$1
[ -f "$file" ] && [ -r "$file" ] || die "no readable file '$file'"
if [ $# -eq 2 ]; then
    content_type=$2
else
    case "$file" in
        *.json) content_type=application/json ;;
        *.csv) content_type=text/csv ;;
        *.jsonl) content_type=application/jsonlines ;;
        *) content_type=text/plain ;;
    esac
fi
port=${PORT:-8080}
[[ $port =~ ^[0-9]+$ ]] || die "PORT must be a port number, got '$port'"
command -v curl >/dev/null 2>&1 || die "curl not found on PATH: install curl"

url="http://127.0.0.1:$port/invocations"
# The status comes last, on a line of its own; curl's own errors go to stderr.
out=$(curl -sS -X POST -H "Content-Type: $content_type" -H "Accept: ${ACCEPT:-*/*}" \
    --data-binary "@$file" -w '\n%{http_code}' "$url") || true
code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
case "$code" in
    2??) printf '%s\n' "$body" ;;
    000 | "") die "no answer from $url: is the server running? (local_test/serve_local.sh)" ;;
    *)
        printf '%s\n' "$body" >&2
        die "HTTP $code from $url ($content_type)"
        ;;
esac
