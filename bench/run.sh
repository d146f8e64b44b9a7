#!/usr/bin/env bash
# OneFlow load benchmark (loopback only, bounded in count and time).
#
# MODE=standard (default) measures, against the mock provider, for the
# one-process `oneflow` and (STACK=distributed, needs PostgreSQL and Redis) the
# four services as separate processes, and direct to the mock in the same run:
#   - throughput at fixed concurrency (CONCURRENCY, 32) for chat and embeddings;
#   - latency p50/p95/p99 at fixed rates (RATES, "200 1000 5000" req/s);
#   - streaming time to first byte and total, through a mock with 50 ms to the
#     first byte and 5 ms between chunks;
#   - the added latency (OneFlow - direct) and the RSS of every process.
# MODE=soak: RATE (1000) req/s for SOAK (10m); error rate and RSS every 10 s.
# MODE=spike: from idle to SPIKE_CONNECTIONS (1024) connections at once for
#   20 s, then a normal run: shed load is 503/429 with Retry-After, nothing
#   crashes, and the service recovers by itself.
# OneFlow is pinned to CPU 0, the load generator and the mocks to CPU 1.
# RUNS (3) repetitions; medians are reported. Results: bench/results/*.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-standard}
STACK=${STACK:-one-process}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}
RUNS=${RUNS:-3}
RATES=${RATES:-200 1000 5000}
RATE=${RATE:-1000}
SOAK=${SOAK:-10m}
SPIKE_CONNECTIONS=${SPIKE_CONNECTIONS:-1024}
OUT=bench/results
mkdir -p "$OUT"

command -v oha >/dev/null 2>&1 || cargo install oha --locked
command -v jq >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq jq; }
# SKIP_BUILD=1 measures the release binaries already in target/release.
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p oneflow -p oneflow-mock-provider -p oneflow-gateway \
  -p oneflow-auth -p oneflow-billing -p oneflow-router

# exec: a backgrounded `pin` keeps the service's own PID (for the RSS reading).
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.05; done; echo "not up: $1" >&2; return 1; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT
start() { # name cpu cmd... ; sets LAST_PID
  local name=$1 cpu=$2; shift 2
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn pin "$cpu" "$@" >"$DATA/$name.log" 2>&1) &
  LAST_PID=$!; PIDS+=("$LAST_PID")
}

# Mocks on CPU 1: an instant one and a slow one (50 ms to the first byte,
# 5 ms between stream chunks) that also answers as "gpt-4o-mini".
MOCK_PORT=$(free_port); SLOW_PORT=$(free_port)
cat >"$DATA/slow.toml" <<TOML
[mock]
chat_models = ["mock-gpt", "gpt-4o-mini"]
first_byte_latency = "50ms"
chunk_interval = "5ms"
TOML
start mock 1 target/release/oneflow-mock-provider --listen "127.0.0.1:$MOCK_PORT"
start slowmock 1 target/release/oneflow-mock-provider --config "$DATA/slow.toml" --listen "127.0.0.1:$SLOW_PORT"
wait_http "http://127.0.0.1:$MOCK_PORT/healthz"; wait_http "http://127.0.0.1:$SLOW_PORT/healthz"

GW_PORT=$(free_port)
declare -A SERVICE_PIDS
if [ "$STACK" = one-process ]; then
  # The one-process mode sends its mock models to the instant mock on CPU 1
  # (mock_base_url; its embedded mock idles) and gpt-4o-mini (OPENAI_* below)
  # to the slow mock, so only OneFlow's own work is on CPU 0.
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn OPENAI_API_KEY=bench OPENAI_BASE_URL="http://127.0.0.1:$SLOW_PORT/v1" \
    pin 0 target/release/oneflow --listen "127.0.0.1:$GW_PORT" \
    --set "data_dir=$DATA" --set admin_credits=100000000 --set "mock_base_url=http://127.0.0.1:$MOCK_PORT" \
    --set limits.key_requests_per_minute=1000000000 --set limits.key_requests_per_hour=1000000000 \
    >"$DATA/oneflow.log" 2>&1) &
  SERVICE_PIDS[oneflow]=$!; PIDS+=("$!")
  for _ in $(seq 1 200); do [ -s "$DATA/admin.key" ] && curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.05; done
  KEY=$(cat "$DATA/admin.key")
  CHAT_MODEL=mock-gpt
else
  # The deployed shape: four processes, PostgreSQL and Redis, all on CPU 0.
  PG=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
  REDIS=${BENCH_REDIS:-redis://127.0.0.1:6379}
  SUFFIX=$(date +%s)
  for db in auth billing; do psql "$PG/postgres" -qc "CREATE DATABASE bench_${db}_$SUFFIX" >/dev/null; done
  AUTH_DB="$PG/bench_auth_$SUFFIX"; BILLING_DB="$PG/bench_billing_$SUFFIX"
  PREFIX="bench-$SUFFIX"
  JWT=bench-signing-secret-of-at-least-32-bytes
  ONEFLOW__JWT__SECRET=$JWT ONEFLOW__DATABASE__URL=$AUTH_DB target/release/oneflow-auth migrate
  ADMIN=$(ONEFLOW__JWT__SECRET=$JWT ONEFLOW__DATABASE__URL=$AUTH_DB target/release/oneflow-auth bootstrap-admin 2>/dev/null)
  KEY=$(jq -r .api_key <<<"$ADMIN"); USER_ID=$(jq -r .user_id <<<"$ADMIN")
  cat >"$DATA/billing.toml" <<TOML
[limits]
key_requests_per_minute = 1000000000
key_requests_per_hour = 1000000000
[pricing]
credits_per_usd = "100"
[[pricing.models]]
model = "mock-gpt"
input_per_million = "0.15"
output_per_million = "0.60"
[[pricing.models]]
model = "gpt-4o-mini"
input_per_million = "0.15"
output_per_million = "0.60"
[[pricing.models]]
model = "mock-embed"
input_per_million = "0.02"
output_per_million = "0"
TOML
  ONEFLOW__REDIS__KEY_PREFIX=$PREFIX ONEFLOW__DATABASE__URL=$BILLING_DB ONEFLOW__REDIS__URL=$REDIS \
    target/release/oneflow-billing --config "$DATA/billing.toml" migrate
  ONEFLOW__REDIS__KEY_PREFIX=$PREFIX ONEFLOW__DATABASE__URL=$BILLING_DB ONEFLOW__REDIS__URL=$REDIS \
    target/release/oneflow-billing --config "$DATA/billing.toml" grant --user "$USER_ID" --amount 100000000 >/dev/null
  cat >"$DATA/router.toml" <<TOML
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
[[providers]]
name = "slow"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$SLOW_PORT/v1"
[[deployments]]
name = "mock-gpt"
provider = "mock"
upstream_model = "mock-gpt"
[[deployments]]
name = "mock-embed"
provider = "mock"
upstream_model = "mock-embed"
[[deployments]]
name = "slow-gpt"
provider = "slow"
upstream_model = "gpt-4o-mini"
[[models]]
name = "mock-gpt"
operation = "chat"
deployments = ["mock-gpt"]
[[models]]
name = "mock-embed"
operation = "embeddings"
deployments = ["mock-embed"]
[[models]]
name = "gpt-4o-mini"
operation = "chat"
deployments = ["slow-gpt"]
TOML
  A=$(free_port); B=$(free_port); R=$(free_port)
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn ONEFLOW__JWT__SECRET=$JWT ONEFLOW__DATABASE__URL=$AUTH_DB pin 0 target/release/oneflow-auth \
    --listen "127.0.0.1:$A" >"$DATA/auth.log" 2>&1) & SERVICE_PIDS[auth]=$!; PIDS+=("$!")
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn ONEFLOW__DATABASE__URL=$BILLING_DB ONEFLOW__REDIS__URL=$REDIS \
    ONEFLOW__REDIS__KEY_PREFIX=$PREFIX pin 0 target/release/oneflow-billing --config "$DATA/billing.toml" --listen "127.0.0.1:$B" \
    >"$DATA/billing.log" 2>&1) & SERVICE_PIDS[billing]=$!; PIDS+=("$!")
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn pin 0 target/release/oneflow-router --config "$DATA/router.toml" \
    --listen "127.0.0.1:$R" >"$DATA/router.log" 2>&1) & SERVICE_PIDS[router]=$!; PIDS+=("$!")
  for p in $A $B $R; do wait_http "http://127.0.0.1:$p/healthz"; done
  (ONEFLOW__TELEMETRY__LOG_LEVEL=warn ONEFLOW__AUTH__URL="http://127.0.0.1:$A" \
    ONEFLOW__BILLING__URL="http://127.0.0.1:$B" ONEFLOW__ROUTER__URL="http://127.0.0.1:$R" \
    pin 0 target/release/oneflow-gateway --listen "127.0.0.1:$GW_PORT" >"$DATA/gateway.log" 2>&1) &
  SERVICE_PIDS[gateway]=$!; PIDS+=("$!")
  wait_http "http://127.0.0.1:$GW_PORT/healthz"
  CHAT_MODEL=mock-gpt
fi

BODY="{\"model\":\"$CHAT_MODEL\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello to the benchmark\"}]}"
SBODY='{"model":"gpt-4o-mini","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello to the benchmark with a few more words"}]}'
EBODY='{"model":"mock-embed","input":["Say hello to the benchmark","and once more"]}'
OF="http://127.0.0.1:$GW_PORT/v1"
DIRECT="http://127.0.0.1:$MOCK_PORT/v1"
SLOW_DIRECT="http://127.0.0.1:$SLOW_PORT/v1"

oha_json() { # oha args... -> JSON on stdout (load generator on CPU 1)
  (pin 1 oha --no-tui --output-format json "$@")
}
post() { # duration url body [extra oha args]
  local duration=$1 url=$2 body=$3; shift 3
  oha_json -z "$duration" -m POST -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" -d "$body" "$@" "$url"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
all_rss() { local s=""; for k in "${!SERVICE_PIDS[@]}"; do s+="\"$k\":$(rss_mb "${SERVICE_PIDS[$k]}"),"; done; echo "{${s%,}}"; }
total_rss() { local t=0; for k in "${!SERVICE_PIDS[@]}"; do t=$(awk -v a="$t" -v b="$(rss_mb "${SERVICE_PIDS[$k]}")" 'BEGIN{print a+b}'); done; echo "$t"; }
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
MACHINE="$(nproc) cores, $(uname -m), $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')"
CPU_SPLIT="OneFlow ($STACK) on CPU 0; oha and the mocks on CPU 1"

# Warm up.
post 2s "$OF/chat/completions" "$BODY" -c "$CONCURRENCY" >/dev/null
post 2s "$DIRECT/chat/completions" "$BODY" -c "$CONCURRENCY" >/dev/null

if [ "$MODE" = soak ]; then
  echo "soak: $RATE req/s for $SOAK through $STACK; RSS every 10 s" >&2
  : >"$OUT/$STAMP-soak-rss.csv"
  ( while true; do echo "$(date +%s),$(total_rss)" >>"$OUT/$STAMP-soak-rss.csv"; sleep 10; done ) &
  SAMPLER=$!; PIDS+=("$SAMPLER")
  json=$(post "$SOAK" "$OF/chat/completions" "$BODY" -c 128 -q "$RATE" --latency-correction)
  kill "$SAMPLER" 2>/dev/null || true
  jq -n --argjson r "$json" --arg machine "$MACHINE" --arg split "$CPU_SPLIT" --arg rate "$RATE" --arg soak "$SOAK" \
    --rawfile rss "$OUT/$STAMP-soak-rss.csv" '
    ($rss | split("\n") | map(select(length>0) | split(",")[1] | tonumber)) as $mb |
    {mode:"soak", machine:$machine, cpu_split:$split, rate:($rate|tonumber), duration:$soak,
     requests: ($r.statusCodeDistribution | to_entries | map(.value) | add),
     success_rate: $r.summary.successRate, status_codes: $r.statusCodeDistribution,
     p50_ms: ($r.latencyPercentiles.p50*1000), p99_ms: ($r.latencyPercentiles.p99*1000),
     rss_mb: {first: $mb[0], last: $mb[-1], max: ($mb|max)}}' >"$OUT/$STAMP-soak.json"
  jq -r '"| soak | value |\n|---|---|\n| rate | \(.rate) req/s for \(.duration) |\n| requests | \(.requests) |\n| success rate | \(.success_rate) |\n| p50 / p99 ms | \(.p50_ms*100|floor/100) / \(.p99_ms*100|floor/100) |\n| RSS MB first / last / max | \(.rss_mb.first) / \(.rss_mb.last) / \(.rss_mb.max) |"' \
    "$OUT/$STAMP-soak.json" | tee "$OUT/$STAMP-soak.md"
  exit 0
fi

if [ "$MODE" = spike ]; then
  echo "spike: idle -> $SPIKE_CONNECTIONS connections for 20 s through $STACK" >&2
  sleep 2
  spike=$(post 20s "$OF/chat/completions" "$BODY" -c "$SPIKE_CONNECTIONS")
  alive=true; for k in "${!SERVICE_PIDS[@]}"; do kill -0 "${SERVICE_PIDS[$k]}" 2>/dev/null || alive=false; done
  sleep 2
  after=$(post 5s "$OF/chat/completions" "$BODY" -c "$CONCURRENCY")
  jq -n --argjson s "$spike" --argjson a "$after" --arg alive "$alive" --argjson rss "$(all_rss)" '{mode:"spike",
     spike:{status_codes:$s.statusCodeDistribution, rps:$s.summary.requestsPerSec, p50_ms:($s.latencyPercentiles.p50*1000), p99_ms:($s.latencyPercentiles.p99*1000)},
     after:{success_rate:$a.summary.successRate, rps:$a.summary.requestsPerSec, p99_ms:($a.latencyPercentiles.p99*1000)},
     services_alive:($alive=="true"), rss_mb:$rss}' >"$OUT/$STAMP-spike.json"
  jq -r '"| spike | value |\n|---|---|\n| status codes during the spike | \(.spike.status_codes) |\n| served req/s, p50 / p99 ms | \(.spike.rps|floor), \(.spike.p50_ms*100|floor/100) / \(.spike.p99_ms*100|floor/100) |\n| every service alive | \(.services_alive) |\n| after: success rate, req/s, p99 ms | \(.after.success_rate), \(.after.rps|floor), \(.after.p99_ms*100|floor/100) |\n| RSS MB | \(.rss_mb) |"' \
    "$OUT/$STAMP-spike.json" | tee "$OUT/$STAMP-spike.md"
  exit 0
fi

declare -A S
add() { S[$1]+="$2 "; }
m() { tr ' ' '\n' <<<"${S[$1]:-}" | grep -v '^$' | median; }
for i in $(seq 1 "$RUNS"); do
  for target in oneflow direct; do
    base=$OF; [ $target = direct ] && base=$DIRECT
    j=$(post "$DURATION" "$base/chat/completions" "$BODY" -c "$CONCURRENCY")
    add "$target.rps" "$(jq '.summary.requestsPerSec' <<<"$j")"
    add "$target.p50" "$(jq '.latencyPercentiles.p50*1000' <<<"$j")"
    add "$target.p99" "$(jq '.latencyPercentiles.p99*1000' <<<"$j")"
    add "$target.ok" "$(jq '.summary.successRate' <<<"$j")"
    j=$(post 5s "$base/embeddings" "$EBODY" -c "$CONCURRENCY")
    add "$target.emb" "$(jq '.summary.requestsPerSec' <<<"$j")"
    for rate in $RATES; do
      j=$(post 5s "$base/chat/completions" "$BODY" -c 64 -q "$rate" --latency-correction)
      add "$target.r$rate.rps" "$(jq '.summary.requestsPerSec' <<<"$j")"
      for p in p50 p95 p99; do add "$target.r$rate.$p" "$(jq ".latencyPercentiles.$p*1000" <<<"$j")"; done
    done
    # Streams through the slow mock: first byte (oha's first-byte figure is
    # not in its JSON, so curl measures it) and the whole stream.
    sbase=$OF; [ $target = direct ] && sbase=$SLOW_DIRECT
    ttfb=$( (pin 1 bash -c 'for n in $(seq 1 20); do curl -s -o /dev/null -w "%{time_starttransfer}\n" -H "Content-Type: application/json" -H "Authorization: Bearer '"$KEY"'" -d '"'$SBODY'"' '"$sbase"'/chat/completions; done') | awk '{print $1*1000}' | median)
    add "$target.ttfb" "$ttfb"
    j=$(post 5s "$sbase/chat/completions" "$SBODY" -c "$CONCURRENCY")
    add "$target.stream_total" "$(jq '.latencyPercentiles.p50*1000' <<<"$j")"
  done
  add rss "$(total_rss)"
done
RSS_EACH=$(all_rss)

rates_json=""
for rate in $RATES; do
  rates_json+="\"$rate\":{\"oneflow\":{\"rps\":$(m oneflow.r$rate.rps),\"p50_ms\":$(m oneflow.r$rate.p50),\"p95_ms\":$(m oneflow.r$rate.p95),\"p99_ms\":$(m oneflow.r$rate.p99)},"
  rates_json+="\"direct\":{\"rps\":$(m direct.r$rate.rps),\"p50_ms\":$(m direct.r$rate.p50),\"p95_ms\":$(m direct.r$rate.p95),\"p99_ms\":$(m direct.r$rate.p99)}},"
done
cat >"$OUT/$STAMP.json" <<JSON
{"mode":"standard","stack":"$STACK","machine":"$MACHINE","cpu_split":"$CPU_SPLIT","duration":"$DURATION","concurrency":$CONCURRENCY,"runs":$RUNS,
 "throughput":{"oneflow":{"rps":$(m oneflow.rps),"p50_ms":$(m oneflow.p50),"p99_ms":$(m oneflow.p99),"success_rate":$(m oneflow.ok),"embeddings_rps":$(m oneflow.emb)},
               "direct":{"rps":$(m direct.rps),"p50_ms":$(m direct.p50),"p99_ms":$(m direct.p99),"success_rate":$(m direct.ok),"embeddings_rps":$(m direct.emb)}},
 "fixed_rate":{${rates_json%,}},
 "stream":{"oneflow":{"ttfb_ms":$(m oneflow.ttfb),"total_p50_ms":$(m oneflow.stream_total)},"direct":{"ttfb_ms":$(m direct.ttfb),"total_p50_ms":$(m direct.stream_total)}},
 "rss_mb_total":$(m rss),"rss_mb":$RSS_EACH}
JSON
jq -r '
  def r2: (.*100|floor/100);
  "Stack: \(.stack). Machine: \(.machine). \(.cpu_split). Medians of \(.runs) runs.\n",
  "| throughput at c=\(.concurrency) | chat req/s | p50 ms | p99 ms | success | embeddings req/s |",
  "|---|---|---|---|---|---|",
  "| oneflow | \(.throughput.oneflow.rps|floor) | \(.throughput.oneflow.p50_ms|r2) | \(.throughput.oneflow.p99_ms|r2) | \(.throughput.oneflow.success_rate) | \(.throughput.oneflow.embeddings_rps|floor) |",
  "| direct to mock | \(.throughput.direct.rps|floor) | \(.throughput.direct.p50_ms|r2) | \(.throughput.direct.p99_ms|r2) | \(.throughput.direct.success_rate) | \(.throughput.direct.embeddings_rps|floor) |",
  "\n| fixed rate | achieved req/s | p50 ms | p95 ms | p99 ms | added p50 ms | added p99 ms |",
  "|---|---|---|---|---|---|---|",
  (.fixed_rate | to_entries[] | "| \(.key) req/s | \(.value.oneflow.rps|floor) (direct \(.value.direct.rps|floor)) | \(.value.oneflow.p50_ms|r2) | \(.value.oneflow.p95_ms|r2) | \(.value.oneflow.p99_ms|r2) | \((.value.oneflow.p50_ms - .value.direct.p50_ms)|r2) | \((.value.oneflow.p99_ms - .value.direct.p99_ms)|r2) |"),
  "\n| stream (50 ms first byte, 5 ms/chunk) | first byte ms | whole stream p50 ms |",
  "|---|---|---|",
  "| oneflow | \(.stream.oneflow.ttfb_ms|r2) | \(.stream.oneflow.total_p50_ms|r2) |",
  "| direct | \(.stream.direct.ttfb_ms|r2) | \(.stream.direct.total_p50_ms|r2) |",
  "\nRSS MB: \(.rss_mb) (total median \(.rss_mb_total))."' "$OUT/$STAMP.json" | tee "$OUT/$STAMP.md"
