#!/usr/bin/env python3
"""`helm lint` and `helm template` of the OneFlow chart without a helm binary.

Uses helm-python-sdk, which embeds Helm's own Go engine (libhelm_c), so the
lint rules, the values.schema.json check and the template rendering are
Helm's. For each values file given:
  1. lint the chart (strict: warnings fail);
  2. validate the merged values against values.schema.json;
  3. render every template as a fresh install and write the manifests to
     OUT_DIR/<name>.yaml (hooks included, NOTES.txt left out);
  4. with --expect-kinds, check that each service has its Deployment,
     Service, HPA, PDB, ServiceAccount, ConfigMap, NetworkPolicy and
     ServiceMonitor, and that the release has the gateway Ingress, the
     migration Job hooks of auth and billing, a PrometheusRule and the
     backup CronJob.

  5. with --bin-dir DIR holding built OneFlow binaries, feed each service's
     rendered TOML, its plain environment variables and the keys of a
     chart-made Secret to the binary's `check-config`, which rejects unknown
     keys and mistyped values.

Usage: helm-check.py CHART OUT_DIR [--bin-dir DIR] [--expect-kinds NAME] VALUES_FILE...
  (no values file: the chart's defaults, rendered as `default`)
"""
from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import yaml

RELEASE = "oneflow"
NAMESPACE = "oneflow"
SERVICES = ["gateway", "auth", "billing", "router"]
PER_SERVICE = [
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ServiceAccount",
    "ConfigMap",
    "NetworkPolicy",
    "ServiceMonitor",
]


def lint(chart: Path, values: dict, label: str) -> list[str]:
    report = helm.lint(chart, values, strict=True, namespace=NAMESPACE)
    problems = []
    for msg in report.get("messages", []):
        severity = msg.get("severity", 0)
        line = f"[{label}] lint {('unknown', 'INFO', 'WARNING', 'ERROR')[severity]}: {msg.get('path')}: {msg.get('error')}"
        print(line)
        if severity >= 2:
            problems.append(line)
    problems += [f"[{label}] lint: {e}" for e in report.get("errors", [])]
    return problems


def render(chart: Path, values: dict) -> list[dict]:
    loaded = helm.Chart.load(chart)
    loaded.validate_schema(values)
    manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(manifests[path]):
            if doc:
                docs.append(doc)
    return docs


def expected_kinds(docs: list[dict], label: str) -> list[str]:
    problems = []
    have: dict[tuple[str, str], list[dict]] = {}
    for d in docs:
        component = d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component", "")
        have.setdefault((d["kind"], component), []).append(d)

    for svc in SERVICES:
        for kind in PER_SERVICE:
            if not have.get((kind, svc)):
                problems.append(f"[{label}] {svc}: no {kind}")
    if not have.get(("Ingress", "gateway")):
        problems.append(f"[{label}] gateway: no Ingress")
    for svc in ("auth", "billing"):
        jobs = have.get(("Job", f"migrate-{svc}"), [])
        hooks = [j for j in jobs if "pre-upgrade" in j["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
        if not hooks:
            problems.append(f"[{label}] {svc}: no migration Job hook (pre-install,pre-upgrade)")
    if not any(k == "PrometheusRule" for k, _ in have):
        problems.append(f"[{label}] no PrometheusRule")
    if not have.get(("CronJob", "backup")):
        problems.append(f"[{label}] no backup CronJob")
    for d in docs:
        if d["kind"] == "Deployment":
            if d["spec"]["template"]["spec"].get("automountServiceAccountToken") is not False:
                problems.append(f"[{label}] {d['metadata']['name']}: mounts a service account token")
    return problems


def check_configs(docs: list[dict], bin_dir: Path, label: str) -> list[str]:
    problems = []
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    with tempfile.TemporaryDirectory() as tmp:
        for dep in (d for d in docs if d["kind"] == "Deployment"):
            component = dep["metadata"]["labels"].get("app.kubernetes.io/component", "")
            pod = dep["spec"]["template"]["spec"]
            container = pod["containers"][0]
            env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
            for ref in container.get("envFrom", []):
                secret = by_name.get(("Secret", ref.get("secretRef", {}).get("name", "")))
                for key, value in (secret or {}).get("data", {}).items():
                    env[key] = base64.b64decode(value).decode()
            config_map = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
            for file_name, text in by_name[("ConfigMap", config_map)]["data"].items():
                (Path(tmp) / file_name).write_text(text)
            env["ONEFLOW_CONFIG"] = str(Path(tmp) / Path(env["ONEFLOW_CONFIG"]).name)
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            binary = bin_dir / f"oneflow-{component}"
            run = subprocess.run([str(binary), "check-config"], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                problems.append(f"[{label}] {component}: check-config refuses the rendered config: {run.stderr.strip()}")
            else:
                print(f"[{label}] {component}: check-config ok")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("chart", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--expect-kinds", action="append", default=[], metavar="NAME",
                        help="values-file name (stem) whose render must hold every expected kind")
    parser.add_argument("--bin-dir", type=Path, help="directory of built oneflow-* binaries")
    parser.add_argument("values", nargs="*", type=Path)
    args = parser.parse_intermixed_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    runs = [("default", {})] + [(p.stem, helm.values_from_yaml(p.read_text())) for p in args.values]
    problems: list[str] = []
    for label, values in runs:
        problems += lint(args.chart, values, label)
        try:
            docs = render(args.chart, values)
        except helm.HelmError as err:
            problems.append(f"[{label}] render failed: {err}")
            continue
        out = args.out_dir / f"{label}.yaml"
        out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        kinds = sorted({d["kind"] for d in docs})
        print(f"[{label}] {len(docs)} objects ({', '.join(kinds)}) -> {out}")
        if label in args.expect_kinds:
            problems += expected_kinds(docs, label)
        if args.bin_dir:
            problems += check_configs(docs, args.bin_dir, label)

    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
