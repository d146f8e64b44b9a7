#!/usr/bin/env python3
"""Fallback check of k8s/ where neither kustomize nor kubectl is installed.

For each kustomization directory given: every file it lists under
`resources` (local files only) and every generator file exists; each patch
parses as YAML and targets an object (kind and name) defined in the
directory's own resources or in a base it includes. kubernetes-validate then
checks the resource files themselves (scripts/ci-deploy.sh).

Usage: check-k8s-files.py DIR...
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml


def objects(directory: Path, seen: set[Path]) -> set[tuple[str, str]]:
    """(kind, name) of every object a kustomization directory produces."""
    directory = directory.resolve()
    if directory in seen:
        return set()
    seen.add(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    found: set[tuple[str, str]] = set()
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            found |= objects(path, seen)
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.add((doc["kind"], doc["metadata"]["name"]))
    for generator in kustomization.get("configMapGenerator", []):
        found.add(("ConfigMap", generator["name"]))
    return found


def check(directory: Path) -> list[str]:
    problems = []
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for entry in kustomization.get("resources", []):
        if not (directory / entry).exists():
            problems.append(f"{directory}: resource {entry} does not exist")
    for generator in kustomization.get("configMapGenerator", []):
        for file_name in generator.get("files", []):
            if not (directory / file_name).exists():
                problems.append(f"{directory}: generator file {file_name} does not exist")
    if problems:
        return problems
    known = objects(directory, set())
    for patch in kustomization.get("patches", []):
        target = patch.get("target")
        if "path" in patch:
            docs = [d for d in yaml.safe_load_all((directory / patch["path"]).read_text()) if d]
        else:
            docs = [d for d in yaml.safe_load_all(patch["patch"]) if d]
        if target:
            if "name" not in target and not any(k == target["kind"] for k, _ in known):
                problems.append(f"{directory}: patch target kind {target['kind']} matches nothing")
            continue
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            if key not in known:
                problems.append(f"{directory}: patch targets {key}, which no resource defines")
    return problems


def main() -> int:
    problems = []
    for arg in sys.argv[1:]:
        problems += check(Path(arg))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"k8s files: {len(sys.argv) - 1} kustomizations consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
