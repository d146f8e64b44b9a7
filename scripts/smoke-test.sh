#!/usr/bin/env bash
# Smoke test of a deployed gateway: `smoke-test.sh https://api.example.com`.
#   - the OpenAPI document is served;
#   - /v1/models refuses a request without a key (401): auth is in the path;
#   - with SMOKE_API_KEY set, /v1/models answers 200 with at least one model.
# Retries for up to two minutes while the ingress picks up new pods.
set -euo pipefail

base="${1:?usage: smoke-test.sh <base URL>}"
base="${base%/}"
deadline=$(( $(date +%s) + 120 ))

check() {
  local want="$1"; shift
  local got
  got=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@" || echo 000)
  [ "$got" = "$want" ]
}

until check 200 "$base/openapi.json" && check 401 "$base/v1/models"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "smoke test failed: $base/openapi.json must answer 200 and $base/v1/models 401 without a key" >&2
    exit 1
  fi
  sleep 5
done
echo "ok: OpenAPI document served, unauthenticated /v1/models refused"

if [ -n "${SMOKE_API_KEY:-}" ]; then
  models=$(curl -fsS --max-time 10 -H "Authorization: Bearer ${SMOKE_API_KEY}" "$base/v1/models")
  if ! printf '%s' "$models" | grep -q '"id"'; then
    echo "smoke test failed: /v1/models lists no model" >&2
    exit 1
  fi
  echo "ok: /v1/models lists models for the smoke key"
fi
