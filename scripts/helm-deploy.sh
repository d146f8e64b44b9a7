#!/usr/bin/env bash
# Deploys the Helm chart for release.yml: `helm-deploy.sh <environment>`.
#
# Images are pinned by the digests the images job pushed (digests/<package>,
# one file per image); values-production.yaml is the base, then
# helm/oneflow/values-<environment>.yaml when it exists, then the host name.
# --atomic: if any hook (the migration Jobs) fails or a pod does not become
# ready within the timeout, Helm rolls the release back by itself.
#
# Environment: KUBECONFIG_B64 (base64 kubeconfig), API_HOST (public host),
# OWNER (GHCR owner); optional RELEASE (oneflow), NAMESPACE (oneflow).
set -euo pipefail

env_name="${1:?usage: helm-deploy.sh <environment>}"
: "${KUBECONFIG_B64:?KUBECONFIG_B64 is not set}"
: "${API_HOST:?API_HOST is not set}"
: "${OWNER:?OWNER is not set}"
release="${RELEASE:-oneflow}"
namespace="${NAMESPACE:-oneflow}"
chart="helm/oneflow"

workdir="${RUNNER_TEMP:-$(mktemp -d)}"
kubeconfig="$workdir/kubeconfig"
umask 077
printf '%s' "$KUBECONFIG_B64" | base64 -d > "$kubeconfig"

args=(-f "$chart/values-production.yaml")
if [ -f "$chart/values-${env_name}.yaml" ]; then
  args+=(-f "$chart/values-${env_name}.yaml")
fi
args+=(--set "image.registry=ghcr.io" --set "image.repositoryPrefix=${OWNER,,}")
args+=(--set "ingress.hosts[0].host=${API_HOST}" --set "ingress.tls[0].hosts[0]=${API_HOST}")
for entry in gateway:oneflow-gateway auth:oneflow-auth billing:oneflow-billing router:oneflow-router; do
  key="${entry%%:*}"
  package="${entry#*:}"
  if [ -s "digests/${package}" ]; then
    args+=(--set "${key}.image.digest=$(cat "digests/${package}")")
  else
    echo "no digest for ${package}; it keeps the chart's tag" >&2
  fi
done

echo "deploying ${release} to ${env_name} (namespace ${namespace})"
helm upgrade --install "$release" "$chart" \
  --kubeconfig "$kubeconfig" \
  --namespace "$namespace" --create-namespace \
  "${args[@]}" \
  --atomic --wait --timeout 15m --history-max 10
helm status "$release" --kubeconfig "$kubeconfig" --namespace "$namespace"
