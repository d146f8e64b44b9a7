#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine.

1. Every variable the file interpolates is documented in .env.example, and
   every required one (${VAR:?...}) is among them.
2. The file, interpolated as `docker compose` would with .env.example (empty
   secrets replaced by dummies), parses with the compose_spec library, which
   checks types, image references, ports and durations.
3. Cross-references hold: depends_on, networks, volumes and configs name
   things that exist; one-shot services that others wait for with
   service_completed_successfully do not restart; services others wait for
   with service_healthy have a health check.

The JSON-schema check against the official Compose Specification runs
separately (check-jsonschema --builtin-schema vendor.compose-spec).
4. With --bin-dir DIR holding built OneFlow binaries (target/debug), each
   OneFlow service's environment and mounted TOML are fed to its binary's
   `check-config`, which refuses unknown keys and mistyped values.

Usage: check-compose.py [--bin-dir DIR] [docker-compose.yml] [.env.example]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from compose_spec import PyCompose

VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


class NoAliases(yaml.SafeDumper):
    """Writes repeated nodes in full instead of as anchors and aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def interpolate(text: str, env: dict[str, str], seen: set[str], required: set[str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("bare"):
            seen.add(match.group("bare"))
            return env.get(match.group("bare"), "")
        parsed = BRACED.match(match.group("braced"))
        if not parsed:
            raise SystemExit(f"unparsable interpolation: {match.group(0)}")
        name, op, arg = parsed.group("name"), parsed.group("op"), parsed.group("arg") or ""
        seen.add(name)
        value = env.get(name)
        if op in (":?", "?"):
            required.add(name)
        if op == ":-":
            return value if value else interpolate(arg, env, seen, required)
        if op == "-":
            return value if value is not None else interpolate(arg, env, seen, required)
        if op == ":+":
            return interpolate(arg, env, seen, required) if value else ""
        if op == "+":
            return interpolate(arg, env, seen, required) if value is not None else ""
        if op in (":?", "?") and not value:
            raise SystemExit(f"required variable {name} is empty: {arg}")
        return value or ""

    return VAR.sub(one, text)


def check_configs(doc: dict, bin_dir: Path) -> list[str]:
    """Runs `<binary> check-config` with each OneFlow service's environment."""
    problems = []
    configs = doc.get("configs") or {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, svc in doc["services"].items():
            package = ((svc.get("build") or {}).get("args") or {}).get("PACKAGE")
            if not package:
                continue
            binary = bin_dir / package
            if not binary.exists():
                problems.append(f"{name}: {binary} not found")
                continue
            env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
            for cfg in svc.get("configs") or []:
                path = Path(tmp) / f"{name}-{cfg['source']}.toml"
                path.write_text(configs[cfg["source"]]["content"])
                if env.get("ONEFLOW_CONFIG") == cfg["target"]:
                    env["ONEFLOW_CONFIG"] = str(path)
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            run = subprocess.run([str(binary), "check-config"], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                problems.append(f"{name}: {package} check-config failed: {run.stderr.strip()}")
            else:
                print(f"{name}: {package} check-config ok")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=Path)
    parser.add_argument("compose", nargs="?", type=Path, default=Path("docker-compose.yml"))
    parser.add_argument("env_file", nargs="?", type=Path, default=Path(".env.example"))
    args = parser.parse_args()
    compose_path, env_path = args.compose, args.env_file
    documented = read_env(env_path)
    # Empty values in .env.example are secrets the user must fill in.
    env = {k: (v if v else "0123456789abcdef0123456789abcdef0123456789abcdef") for k, v in documented.items()}

    seen: set[str] = set()
    required: set[str] = set()

    # Compose parses the YAML first (resolving merge keys), then interpolates
    # the string values; so does this check.
    def walk(node: object) -> object:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return interpolate(node, env, seen, required)
        return node

    doc = walk(yaml.safe_load(compose_path.read_text()))
    problems: list[str] = []
    for name in sorted(seen - documented.keys()):
        problems.append(f"variable {name} is used by {compose_path} but not listed in {env_path}")

    # compose_spec reads the flattened document (no anchors or merge keys).
    flat = yaml.dump(doc, Dumper=NoAliases, sort_keys=False)
    try:
        PyCompose.from_yaml(flat)
    except ValueError as err:
        problems.append(f"compose_spec rejects the interpolated file: {err}")

    services: dict = doc.get("services", {})
    networks = set((doc.get("networks") or {}).keys()) | {"default"}
    volumes = set((doc.get("volumes") or {}).keys())
    configs = set((doc.get("configs") or {}).keys())
    secrets = doc.get("secrets") or {}
    for name, secret in secrets.items():
        var = (secret or {}).get("environment")
        if var and var not in documented:
            problems.append(f"secret {name} reads {var}, which {env_path} does not list")
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
                continue
            condition = spec.get("condition")
            target = services[dep]
            if condition == "service_healthy":
                hc = target.get("healthcheck") or {}
                if hc.get("disable") or ("test" not in hc and "image" in target and "build" not in target):
                    problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
            if condition == "service_completed_successfully" and target.get("restart") not in ("no", None):
                problems.append(f"{name}: waits for one-shot {dep}, which restarts ({target.get('restart')})")
        nets = svc.get("networks") or []
        for net in nets if isinstance(nets, list) else nets.keys():
            if net not in networks:
                problems.append(f"{name}: unknown network {net}")
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if source and not source.startswith(("/", ".", "~")) and source not in volumes:
                problems.append(f"{name}: unknown named volume {source}")
            if source.startswith("./") and not (compose_path.parent / source).exists():
                print(f"note: {name} mounts {source}, which does not exist yet", file=sys.stderr)
        for sec in svc.get("secrets") or []:
            source = sec if isinstance(sec, str) else sec.get("source")
            if source not in secrets:
                problems.append(f"{name}: unknown secret {source}")
        for sec in svc.get("secrets") or []:
            source = sec if isinstance(sec, str) else sec.get("source")
            if source not in secrets:
                problems.append(f"{name}: unknown secret {source}")
        for cfg in svc.get("configs") or []:
            source = cfg if isinstance(cfg, str) else cfg.get("source")
            if source not in configs:
                problems.append(f"{name}: unknown config {source}")

    if args.bin_dir:
        problems += check_configs(doc, args.bin_dir)

    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{compose_path}: {len(services)} services, {len(required)} required variables, all documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
