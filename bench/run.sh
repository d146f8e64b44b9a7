#!/usr/bin/env bash
# OneFlow load benchmark (loopback only, bounded in time).
#
# Measures, against the mock provider: throughput at fixed concurrency and
# latency percentiles for chat through the one-process `oneflow` (auth, billing
# and router on, over loopback gRPC) and direct to the mock, the added latency,
# streaming time to first byte, and OneFlow's RSS. OneFlow is pinned to CPU 0,
# the load generator and the direct mock to CPU 1, so runs are comparable.
#
# Env: DURATION (default 10s), CONCURRENCY (32), RUNS (3: medians are reported).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}
RUNS=${RUNS:-3}
OUT=bench/results
mkdir -p "$OUT"

command -v oha >/dev/null 2>&1 || cargo install oha --locked
command -v jq >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq jq; }
cargo build --release -p oneflow -p oneflow-mock-provider

# exec: a backgrounded `pin` keeps the service's own PID (for the RSS reading).
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DATA=$(mktemp -d)
GW_PORT=$(free_port); MOCK_PORT=$(free_port)
(pin 1 target/release/oneflow-mock-provider --listen "127.0.0.1:$MOCK_PORT" 2>/dev/null) &
MOCK_PID=$!
(ONEFLOW__TELEMETRY__LOG_LEVEL=warn pin 0 target/release/oneflow --listen "127.0.0.1:$GW_PORT" \
  --set "data_dir=$DATA" --set admin_credits=100000000 \
  --set limits.key_requests_per_minute=1000000000 --set limits.key_requests_per_hour=1000000000 >/dev/null 2>&1) &
OF_PID=$!
trap 'kill $OF_PID $MOCK_PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do [ -s "$DATA/admin.key" ] && curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.1; done
KEY=$(cat "$DATA/admin.key")
BODY='{"model":"mock-gpt","max_tokens":64,"messages":[{"role":"user","content":"Say hello to the benchmark"}]}'
SBODY='{"model":"mock-gpt","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello to the benchmark"}]}'

load() { # duration url body -> oha JSON
  local duration=$1 url=$2 body=$3; shift 3
  (pin 1 oha --no-tui --output-format json -z "$duration" -c "$CONCURRENCY" -m POST \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" -d "$body" "$@" "$url")
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm up both paths.
load 2s "http://127.0.0.1:$GW_PORT/v1/chat/completions" "$BODY" >/dev/null
load 2s "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$BODY" >/dev/null

declare -A series
for i in $(seq 1 "$RUNS"); do
  for target in oneflow direct; do
    port=$GW_PORT; [ $target = direct ] && port=$MOCK_PORT
    json=$(load "$DURATION" "http://127.0.0.1:$port/v1/chat/completions" "$BODY")
    series[$target.rps]+="$(jq '.summary.requestsPerSec' <<<"$json") "
    series[$target.p50]+="$(jq '.latencyPercentiles.p50 * 1000' <<<"$json") "
    series[$target.p99]+="$(jq '.latencyPercentiles.p99 * 1000' <<<"$json") "
    series[$target.ok]+="$(jq '.summary.successRate' <<<"$json") "
    sjson=$(load 3s "http://127.0.0.1:$port/v1/chat/completions" "$SBODY")
    series[$target.ttfb]+="$(jq '.latencyPercentiles.p50 * 1000' <<<"$sjson") "
  done
  series[rss]+="$(awk '/VmRSS/ {print $2/1024}' /proc/$OF_PID/status) "
done

m() { tr ' ' '\n' <<<"${series[$1]}" | grep -v '^$' | median; }
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
cat > "$OUT/$STAMP.json" <<JSON
{"machine":"$(nproc) cores, $(uname -m)","duration":"$DURATION","concurrency":$CONCURRENCY,"runs":$RUNS,
 "oneflow":{"rps":$(m oneflow.rps),"p50_ms":$(m oneflow.p50),"p99_ms":$(m oneflow.p99),"success_rate":$(m oneflow.ok),"stream_p50_ms":$(m oneflow.ttfb)},
 "direct":{"rps":$(m direct.rps),"p50_ms":$(m direct.p50),"p99_ms":$(m direct.p99),"success_rate":$(m direct.ok),"stream_p50_ms":$(m direct.ttfb)},
 "oneflow_rss_mb":$(m rss)}
JSON
jq -r '"| path | req/s | p50 ms | p99 ms | success | stream p50 ms |\n|---|---|---|---|---|---|\n| oneflow (1 core) | \(.oneflow.rps|floor) | \(.oneflow.p50_ms*100|floor/100) | \(.oneflow.p99_ms*100|floor/100) | \(.oneflow.success_rate) | \(.oneflow.stream_p50_ms*100|floor/100) |\n| direct to mock | \(.direct.rps|floor) | \(.direct.p50_ms*100|floor/100) | \(.direct.p99_ms*100|floor/100) | \(.direct.success_rate) | \(.direct.stream_p50_ms*100|floor/100) |\n\nAdded p50 latency at c=\(.concurrency): \((.oneflow.p50_ms - .direct.p50_ms)*1000|floor/1000) ms. OneFlow RSS: \(.oneflow_rss_mb|floor) MB. Medians of \(.runs) runs of \(.duration)."' \
  "$OUT/$STAMP.json" | tee "$OUT/$STAMP.md"
