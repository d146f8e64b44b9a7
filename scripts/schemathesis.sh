#!/usr/bin/env bash
# Property-based API testing of the public OpenAPI document with schemathesis:
# starts the one-process `oneflow` (debug build) on a free loopback port and
# fails on any 5xx, undocumented status code or response that breaks its schema.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ONEFLOW_BIN:-target/debug/oneflow}
EXAMPLES=${EXAMPLES:-30}
python3 -c 'import schemathesis' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check schemathesis
[ -x "$BIN" ] || cargo build -p oneflow
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --listen "127.0.0.1:$PORT" --set "data_dir=$DATA" \
  --set limits.key_requests_per_minute=0 --set limits.key_requests_per_hour=0 >/dev/null 2>"$DATA/oneflow.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do
  [ -s "$DATA/admin.key" ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
KEY=$(cat "$DATA/admin.key")
schemathesis run "http://127.0.0.1:$PORT/openapi.json" -H "Authorization: Bearer $KEY" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance \
  --max-examples "$EXAMPLES" --no-color
