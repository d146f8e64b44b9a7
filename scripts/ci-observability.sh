#!/usr/bin/env bash
# Checks OneFlow's monitoring, alerting and recovery files, then proves the
# dashboards against the real services:
#   1. promtool check config / check rules / test rules; amtool check-config,
#      routing and a live inhibition check on a real Alertmanager;
#   2. dashboards, rules and tests: scripts/check-observability.py static
#      (metric names exist, runbooks exist, every alert fires and stays quiet
#      in a test);
#   3. scripts/test-backup-restore.sh (local PostgreSQL);
#   4. live scrape: the four services and the mock provider (target/debug,
#      SQLite and in-memory counters) on fixed loopback ports, real traffic
#      through the gateway with curl, a real Prometheus scraping every second
#      with the repository's rules, then every dashboard query through
#      /api/v1/query (scripts/check-observability.py live).
# Installs prometheus and prometheus-alertmanager with apt when missing. The
# binaries must already be built (cargo test / cargo build builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
ROOT=$PWD
BIN=${ONEFLOW_BIN_DIR:-$ROOT/target/debug}

# Fixed loopback ports of the live test; override with OBS_PORT_BASE.
base=${OBS_PORT_BASE:-18000}
MOCK_PORT=$((base + 90)) AUTH_PORT=$((base + 51)) BILLING_PORT=$((base + 52)) ROUTER_PORT=$((base + 53))
GATEWAY_PORT=$((base + 80)) PROM_PORT=$((base + 91)) AM_PORT=$((base + 93))

step() { printf '\n== %s\n' "$*"; }
die() { printf 'FAIL %s\n' "$*" >&2; exit 1; }

# -- tools ------------------------------------------------------------------------
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
if [[ ${#need[@]} -gt 0 ]]; then
  step "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
PROMETHEUS=$(command -v prometheus) || die "the prometheus server binary is missing (apt-get install prometheus)"
ALERTMANAGER=$(command -v prometheus-alertmanager || command -v alertmanager) || die "alertmanager binary missing"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pyyaml

work=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $rc -ne 0 && -d $work ]]; then
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      printf -- '--- last lines of %s\n' "$(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- 1. Prometheus and Alertmanager files -------------------------------------------
step "promtool check config"
promtool check config deploy/prometheus/prometheus.yml
step "promtool check rules"
promtool check rules deploy/prometheus/rules/*.yml
step "promtool test rules"
promtool test rules deploy/prometheus/tests/*.yml

step "amtool check-config"
amtool check-config deploy/alertmanager/alertmanager.yml
route() { amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml "$@" 2>/dev/null; }
[[ $(route severity=critical service=gateway) == pagerduty-critical ]] || die "critical alerts must page through PagerDuty"
[[ $(route severity=warning service=router) == opsgenie-warning ]] || die "warnings must go to Opsgenie"
[[ $(route alertname=Unknown) == opsgenie-warning ]] || die "alerts without a severity must still reach a receiver"
echo "routes: critical -> pagerduty-critical, warning -> opsgenie-warning, default -> opsgenie-warning"

step "alertmanager: a critical alert inhibits the warning of the same alert and service"
mkdir -p "$work/am/secrets"
echo placeholder >"$work/am/secrets/pagerduty-routing-key"
echo placeholder >"$work/am/secrets/opsgenie-api-key"
sed "s#/etc/alertmanager/secrets/#$work/am/secrets/#" deploy/alertmanager/alertmanager.yml >"$work/am/alertmanager.yml"
"$ALERTMANAGER" --config.file="$work/am/alertmanager.yml" --storage.path="$work/am/data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null && break; sleep 0.2; done
am="http://127.0.0.1:$AM_PORT"
alert() { printf '{"labels":{"alertname":"%s","service":"%s","severity":"%s"}}' "$@"; }
curl -sf -XPOST -H 'Content-Type: application/json' "$am/api/v2/alerts" -d "[
  $(alert OneFlowErrorRateHigh gateway critical), $(alert OneFlowErrorRateHigh gateway warning),
  $(alert OneFlowLatencyHigh gateway warning), $(alert OneFlowErrorRateHigh billing warning)]" >/dev/null
sleep 2
curl -sf "$am/api/v2/alerts" >"$work/am-alerts.json"
python3 - "$work/am-alerts.json" <<'EOF'
import json, sys
state = {(a["labels"]["alertname"], a["labels"]["service"], a["labels"]["severity"]): a["status"]["state"]
         for a in json.load(open(sys.argv[1]))}
want = {("OneFlowErrorRateHigh", "gateway", "critical"): "active",
        ("OneFlowErrorRateHigh", "gateway", "warning"): "suppressed",   # inhibited by the critical
        ("OneFlowLatencyHigh", "gateway", "warning"): "active",         # another alert
        ("OneFlowErrorRateHigh", "billing", "warning"): "active"}       # another service
bad = {k: (state.get(k), v) for k, v in want.items() if state.get(k) != v}
if bad:
    sys.exit(f"FAIL inhibition: got/expected {bad}")
print("inhibition: warning suppressed by the critical of the same alert and service; others active")
EOF

# -- 2. dashboards, rules, runbooks, tests ---------------------------------------------
step "dashboards and rules (scripts/check-observability.py static)"
python3 scripts/check-observability.py static
for f in deploy/otel-collector.yaml deploy/loki/loki.yaml deploy/promtail/promtail.yaml deploy/blackbox/blackbox.yml \
  deploy/grafana/provisioning/datasources/datasources.yml deploy/grafana/provisioning/dashboards/dashboards.yml; do
  python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || die "$f is not valid YAML"
done
echo "collector, Loki, promtail, blackbox and Grafana provisioning files parse"
if command -v prometheus-blackbox-exporter >/dev/null; then
  prometheus-blackbox-exporter --config.check --config.file=deploy/blackbox/blackbox.yml 2>&1 | tail -n 1
fi

# -- 3. backups -------------------------------------------------------------------------
step "backup and restore (scripts/test-backup-restore.sh)"
bash scripts/test-backup-restore.sh

# -- 4. live scrape -----------------------------------------------------------------------
step "live: services, traffic, Prometheus, dashboard queries"
for b in oneflow-mock-provider oneflow-auth oneflow-billing oneflow-router oneflow-gateway; do
  [[ -x $BIN/$b ]] || die "$BIN/$b is missing: build the services first (cargo build -p ${b}) or set ONEFLOW_BIN_DIR"
done
for port in $MOCK_PORT $AUTH_PORT $BILLING_PORT $ROUTER_PORT $GATEWAY_PORT $PROM_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is in use (set OBS_PORT_BASE to move the live test's ports)"
  fi
done

cat >"$work/router.toml" <<EOF
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"

[[deployments]]
name = "mock/gpt"
provider = "mock"
upstream_model = "mock-gpt"
requests_per_minute = 10000

[[deployments]]
name = "mock/flaky"
provider = "mock"
upstream_model = "mock-gpt"

[[deployments]]
name = "mock/limited"
provider = "mock"
upstream_model = "mock-gpt"
requests_per_minute = 1

[[deployments]]
name = "mock/embed"
provider = "mock"
upstream_model = "mock-embed"

[[models]]
name = "mock-gpt"
operation = "chat"
deployments = ["mock/gpt"]
max_output_tokens = 100

[[models]]
name = "mock-flaky"
operation = "chat"
deployments = ["mock/flaky"]
max_output_tokens = 100

[[models]]
name = "mock-limited"
operation = "chat"
deployments = ["mock/limited"]
max_output_tokens = 100

[[models]]
name = "mock-embed"
operation = "embeddings"
deployments = ["mock/embed"]

[retry]
max_retries = 1
min_delay = "10ms"
max_delay = "20ms"

[breaker]
failure_threshold = 2
open_for = "60s"

[billing]
url = "http://127.0.0.1:$BILLING_PORT"
timeout = "1s"
EOF
cat >"$work/billing.toml" <<'EOF'
[pricing]
credits_per_usd = "100"

[[pricing.models]]
model = "mock-gpt"
input_per_million = "150"
output_per_million = "600"

[[pricing.models]]
model = "mock-flaky"
input_per_million = "150"
output_per_million = "600"

[[pricing.models]]
model = "mock-limited"
input_per_million = "150"
output_per_million = "600"

[[pricing.models]]
model = "mock-embed"
input_per_million = "20"
EOF

export ONEFLOW__TELEMETRY__LOG_FORMAT=json
run_bg() { # name, then the command
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_http() { # url, name
  for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  die "$2 did not answer $1"
}

auth_env=(env "ONEFLOW__DATABASE__URL=sqlite://$work/auth.db" "ONEFLOW__JWT__SECRET=ci-observability-signing-secret-0123456789")
admin=$("${auth_env[@]}" "$BIN/oneflow-auth" bootstrap-admin --email ops@example.com 2>"$work/bootstrap.log")
key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_key"])' "$admin")
admin_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["user_id"])' "$admin")

run_bg mock "$BIN/oneflow-mock-provider" --listen "127.0.0.1:$MOCK_PORT"
run_bg auth "${auth_env[@]}" "$BIN/oneflow-auth" --listen "127.0.0.1:$AUTH_PORT"
run_bg billing env "ONEFLOW__DATABASE__URL=sqlite://$work/billing.db" \
  "$BIN/oneflow-billing" --config "$work/billing.toml" --listen "127.0.0.1:$BILLING_PORT"
run_bg router "$BIN/oneflow-router" --config "$work/router.toml" --listen "127.0.0.1:$ROUTER_PORT"
wait_http "http://127.0.0.1:$MOCK_PORT/healthz" mock-provider
wait_http "http://127.0.0.1:$AUTH_PORT/healthz" auth
wait_http "http://127.0.0.1:$BILLING_PORT/healthz" billing
wait_http "http://127.0.0.1:$ROUTER_PORT/healthz" router
run_bg gateway env "ONEFLOW__AUTH__URL=http://127.0.0.1:$AUTH_PORT" "ONEFLOW__BILLING__URL=http://127.0.0.1:$BILLING_PORT" \
  "ONEFLOW__ROUTER__URL=http://127.0.0.1:$ROUTER_PORT" "$BIN/oneflow-gateway" --listen "127.0.0.1:$GATEWAY_PORT"
gw="http://127.0.0.1:$GATEWAY_PORT"
wait_http "$gw/readyz" gateway
echo "services up: gateway :$GATEWAY_PORT, auth :$AUTH_PORT, billing :$BILLING_PORT, router :$ROUTER_PORT, mock :$MOCK_PORT"

# Prometheus: the repository's rules, every OneFlow job scraped each second.
# The 30-day SLO group is evaluated every second here instead of 5 minutes.
mkdir -p "$work/prom/rules"
sed 's/^    interval: 5m$/    interval: 1s/' deploy/prometheus/rules/slo.yml >"$work/prom/rules/slo.yml"
cp deploy/prometheus/rules/alerts.yml "$work/prom/rules/alerts.yml"
cat >"$work/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules/alerts.yml, rules/slo.yml]
scrape_configs:
  - job_name: oneflow-gateway
    static_configs: [{targets: ["127.0.0.1:$GATEWAY_PORT"], labels: {service: gateway}}]
  - job_name: oneflow-auth
    static_configs: [{targets: ["127.0.0.1:$AUTH_PORT"], labels: {service: auth}}]
  - job_name: oneflow-billing
    static_configs: [{targets: ["127.0.0.1:$BILLING_PORT"], labels: {service: billing}}]
  - job_name: oneflow-router
    static_configs: [{targets: ["127.0.0.1:$ROUTER_PORT"], labels: {service: router}}]
EOF
promtool check config "$work/prom/prometheus.yml" >/dev/null
run_bg prometheus "$PROMETHEUS" --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn
prom="http://127.0.0.1:$PROM_PORT"
wait_http "$prom/-/ready" prometheus

# Traffic. Each call prints its status; the expected status is checked.
call() { # expected-status method path [body] [extra curl args...]
  local want=$1 method=$2 path=$3 body=${4:-} got
  shift 4 || shift $#
  got=$(curl -s -o "$work/last.json" -w '%{http_code}' -X "$method" "$gw$path" \
    -H 'Content-Type: application/json' ${body:+-d "$body"} "$@")
  [[ $got == "$want" ]] || die "$method $path: expected $want, got $got: $(head -c 300 "$work/last.json")"
}
auth=(-H "Authorization: Bearer $key")
chat() { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "${3:-}"; }

call 201 POST "/v1/admin/users/$admin_id/credits" '{"amount":"1000","kind":"top_up"}' "${auth[@]}" -H 'Idempotency-Key: ci-top-up'
for i in 1 2 3 4 5; do call 200 POST /v1/chat/completions "$(chat mock-gpt "hello number $i")" "${auth[@]}"; done
call 200 POST /v1/chat/completions "$(chat mock-gpt 'stream me please' ',"stream":true,"stream_options":{"include_usage":true}')" "${auth[@]}"
# A stream the upstream cuts after two words: 200 on the wire, counted as a cut.
call 200 POST /v1/chat/completions "$(chat mock-gpt 'one two three four five' ',"stream":true,"metadata":{"mock_cut_after":"2"}')" "${auth[@]}"
call 200 POST /v1/embeddings '{"model":"mock-embed","input":"embed this"}' "${auth[@]}"
call 200 GET /v1/models "" "${auth[@]}"
# Client errors: no credential, unknown model, a worst case above the balance.
call 401 GET /v1/models ""
call 404 POST /v1/chat/completions "$(chat no-such-model hi)" "${auth[@]}"
call 402 POST /v1/chat/completions "$(chat mock-gpt 'too expensive' ',"max_tokens":100000000')" "${auth[@]}"
# Upstream 500s: retried, then the breaker (threshold 2) opens and the third is skipped.
call 502 POST /v1/chat/completions "$(chat mock-flaky fail ',"metadata":{"mock_status":"500"}')" "${auth[@]}"
call 502 POST /v1/chat/completions "$(chat mock-flaky fail ',"metadata":{"mock_status":"500"}')" "${auth[@]}"
call 503 POST /v1/chat/completions "$(chat mock-flaky skipped)" "${auth[@]}"
# A deployment limited to one request a minute: the second finds it full.
call 200 POST /v1/chat/completions "$(chat mock-limited first)" "${auth[@]}"
call 429 POST /v1/chat/completions "$(chat mock-limited second)" "${auth[@]}"
# A key limited to one request a minute: billing refuses its second.
call 201 POST /v1/keys '{"name":"limited","limits":{"requests_per_minute":1}}' "${auth[@]}"
limited=$(python3 -c 'import json; print(json.load(open("'"$work/last.json"'"))["key"])')
call 200 POST /v1/chat/completions "$(chat mock-gpt 'limited one')" -H "Authorization: Bearer $limited"
call 429 POST /v1/chat/completions "$(chat mock-gpt 'limited two')" -H "Authorization: Bearer $limited"
# A user: registration, logins (one wrong), a key of their own, then its revocation.
call 201 POST /v1/auth/register '{"email":"user@example.com","password":"a long enough passphrase"}'
call 401 POST /v1/auth/login '{"email":"user@example.com","password":"not the passphrase"}'
call 200 POST /v1/auth/login '{"email":"user@example.com","password":"a long enough passphrase"}'
token=$(python3 -c 'import json; print(json.load(open("'"$work/last.json"'"))["access_token"])')
call 201 POST /v1/keys '{"name":"mine"}' -H "Authorization: Bearer $token"
user_key_id=$(python3 -c 'import json; print(json.load(open("'"$work/last.json"'"))["id"])')
call 200 DELETE "/v1/keys/$user_key_id" "" -H "Authorization: Bearer $token"
call 200 GET /v1/billing/balance "" "${auth[@]}"
echo "traffic sent: chats, a stream, a cut stream, embeddings, 4xx, upstream 5xx, an open breaker, full capacity, rate limits, logins, keys"

# Wait until the last requests are scraped and the rules have run on them.
for _ in $(seq 1 60); do
  n=$(curl -sf "$prom/api/v1/query" --data-urlencode 'query=sum(oneflow_funnel_total{step="first_key_created"}) + sum(oneflow_auth_revocations_total) + count(oneflow:slo_availability:error_ratio_rate30d)' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
  [[ $n == 3 ]] && break
  sleep 1
done
[[ $n == 3 ]] || die "Prometheus did not see the traffic within 60 s"
sleep 3 # a few more scrapes, so every rate() has two samples after the last request

ups=$(curl -sf "$prom/api/v1/query" --data-urlencode 'query=sum(up{job=~"oneflow-.*"})' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
[[ $ups == 4 ]] || die "expected 4 OneFlow targets up, got $ups"
echo "prometheus: 4 OneFlow targets up, rules evaluated"

python3 scripts/check-observability.py live "$prom"

step "all observability checks passed in $(($(date +%s) - start))s"
