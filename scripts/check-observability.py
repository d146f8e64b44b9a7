#!/usr/bin/env python3
"""Static and live checks of OneFlow's observability files.

  check-observability.py static
      Every metric name in the Grafana dashboards exists (emitted by the Rust
      code, recorded by a rule, or exported by a listed exporter); every rule
      names only such metrics or ones listed as pending; every alert has a
      severity, a service, a summary and a runbook that exists; every alert
      has a promtool test where it fires and one where it stays quiet;
      dashboard JSON is well formed with unique, stable uids.

  check-observability.py live PROMETHEUS_URL
      Runs every dashboard query through Prometheus's /api/v1/query and fails
      when a panel that should have data returns nothing. Panels that only
      show data under failure, or from exporters the live test does not run,
      are listed in EXPECTED_EMPTY below.

Used by scripts/ci-observability.sh. Needs PyYAML.
"""
import glob
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DASHBOARDS = os.path.join(ROOT, "deploy/grafana/dashboards")
RULES = os.path.join(ROOT, "deploy/prometheus/rules")
TESTS = os.path.join(ROOT, "deploy/prometheus/tests")
EXPORTERS = os.path.join(ROOT, "deploy/prometheus/exporter-metrics.txt")
PENDING = os.path.join(ROOT, "deploy/prometheus/pending-metrics.txt")
RUNBOOKS = os.path.join(ROOT, "docs/operations/runbooks")

# Panels with no data in the live test, by dashboard uid and panel title, and why.
EXPECTED_EMPTY = {
    ("oneflow-errors", "Settlements given up, reservations expired"): "only when billing is unreachable for a settlement or a gateway dies",
    ("oneflow-dependencies", "Counter calls run on per-process memory (Redis failed)"): "only while Redis fails (the live test runs billing without Redis)",
    ("oneflow-dependencies", "Counter failures that failed the call"): "only when the counter store fails",
    ("oneflow-dependencies", "PostgreSQL up"): "postgres_exporter (not run by the live test)",
    ("oneflow-dependencies", "Connections used"): "postgres_exporter",
    ("oneflow-dependencies", "Connections by database and state"): "postgres_exporter",
    ("oneflow-dependencies", "Transactions/s by database"): "postgres_exporter",
    ("oneflow-dependencies", "Database size"): "postgres_exporter",
    ("oneflow-dependencies", "Redis up"): "redis_exporter (not run by the live test)",
    ("oneflow-dependencies", "Clients connected"): "redis_exporter",
    ("oneflow-dependencies", "Connected and rejected clients"): "redis_exporter",
    ("oneflow-dependencies", "Memory used and limit"): "redis_exporter",
    ("oneflow-dependencies", "Commands/s"): "redis_exporter",
}

PROMQL_WORDS = {
    # aggregations, functions and keywords that can appear without "("
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "atan2", "start", "end",
}
GRAFANA_VARS = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s", "__range_s": "3600"}


def fail(msg):
    print(f"FAIL {msg}")
    return 1


# --------------------------------------------------------------------- names
def code_metrics():
    """Metric names the Rust code records: counter!/gauge!/histogram!("name" ...)."""
    names = {}
    pattern = re.compile(r'\b(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
    for path in glob.glob(os.path.join(ROOT, "crates/**/*.rs"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "services/**/*.rs"), recursive=True):
        if "/tests/" in path:
            continue
        with open(path, encoding="utf-8") as f:
            for kind, name in pattern.findall(f.read()):
                names[name] = kind
    out = set()
    for name, kind in names.items():
        out.add(name)
        if kind == "histogram":
            out |= {name + "_bucket", name + "_sum", name + "_count"}
    return out, names


def listed(path):
    """Names from a list file: the first word of each line, '#' starts a comment."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.add(line.split()[0])
    return out


def rule_groups():
    for path in sorted(glob.glob(os.path.join(RULES, "*.yml"))):
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f)["groups"]:
                yield path, group


def recorded_names():
    return {r["record"] for _, g in rule_groups() for r in g["rules"] if "record" in r}


def promql_metrics(expr):
    """Metric names referenced by a PromQL expression (a good-enough lexer)."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace("$" + var, value)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    expr = re.sub(r"\{[^{}]*\}", "", expr)                    # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                    # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):          # a function or aggregation
            continue
        if word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or re.match(r"^e\d", word):
            continue
        prev = expr[:m.start()]
        if re.search(r"[0-9.]$", prev):   # 1e3, 2.5e-1
            continue
        names.add(word)
    return names


def dashboards():
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path, encoding="utf-8") as f:
            yield path, json.load(f)


def panels_of(board):
    for p in board.get("panels", []):
        yield p
        for inner in p.get("panels", []):
            yield inner


def prometheus_targets(panel):
    for t in panel.get("targets", []):
        ds = t.get("datasource") or panel.get("datasource") or {}
        if ds.get("type", "prometheus") == "prometheus" and t.get("expr"):
            yield t


# --------------------------------------------------------------------- static
def check_static():
    errors = 0
    code, kinds = code_metrics()
    exporters = listed(EXPORTERS)
    pending = listed(PENDING)
    recorded = recorded_names()
    print(f"metrics: {len(kinds)} recorded by the code, {len(recorded)} by rules, "
          f"{len(exporters)} from exporters, {len(pending)} pending")
    for name in sorted(pending & code):
        print(f"note: pending metric {name} is now recorded by the code; remove it from {os.path.relpath(PENDING, ROOT)}")

    # Dashboards.
    uids, titles = set(), set()
    queries = 0
    for path, board in dashboards():
        rel = os.path.relpath(path, ROOT)
        uid = board.get("uid", "")
        if not re.fullmatch(r"oneflow-[a-z0-9-]+", uid):
            errors += fail(f"{rel}: uid {uid!r} is not a stable oneflow-* uid")
        if uid in uids:
            errors += fail(f"{rel}: duplicate uid {uid}")
        uids.add(uid)
        if board.get("title") in titles:
            errors += fail(f"{rel}: duplicate title")
        titles.add(board.get("title"))
        ids, ptitles = set(), set()
        for p in panels_of(board):
            if p.get("id") in ids:
                errors += fail(f"{rel}: duplicate panel id {p.get('id')}")
            ids.add(p.get("id"))
            if p.get("type") in ("row", "text"):
                continue
            if p.get("title") in ptitles:
                errors += fail(f"{rel}: duplicate panel title {p.get('title')!r}")
            ptitles.add(p.get("title"))
            for t in prometheus_targets(p):
                queries += 1
                for name in promql_metrics(t["expr"]):
                    if name not in code and name not in exporters and name not in recorded:
                        where = " (pending: dashboards may not use it yet)" if name in pending else ""
                        errors += fail(f"{rel}: panel {p.get('title')!r} uses unknown metric {name}{where}")
        for key in EXPECTED_EMPTY:
            if key[0] == uid and key[1] not in ptitles:
                errors += fail(f"EXPECTED_EMPTY names a panel that does not exist: {key}")
    print(f"dashboards: {len(uids)} dashboards, {queries} Prometheus queries checked")

    # Rules.
    alerts = {}
    for path, group in rule_groups():
        rel = os.path.relpath(path, ROOT)
        for rule in group["rules"]:
            for name in promql_metrics(rule["expr"]):
                known = name in code or name in exporters or name in recorded
                if not known and name not in pending:
                    errors += fail(f"{rel}: rule {rule.get('alert') or rule.get('record')} uses unknown metric {name}")
                elif not known:
                    print(f"note: {rel}: {rule.get('alert')} reads {name}, not recorded by the code yet (pending)")
            if "alert" not in rule:
                continue
            name = rule["alert"]
            alerts[name] = rel
            labels, ann = rule.get("labels", {}), rule.get("annotations", {})
            if labels.get("severity") not in ("critical", "warning"):
                errors += fail(f"{rel}: {name} has no severity critical or warning")
            if "service" not in labels and "service" not in rule["expr"]:
                errors += fail(f"{rel}: {name} has no service label")
            if not ann.get("summary"):
                errors += fail(f"{rel}: {name} has no summary")
            url = ann.get("runbook_url", "")
            m = re.search(r"docs/operations/runbooks/([a-z0-9-]+\.md)$", url)
            if not m:
                errors += fail(f"{rel}: {name} has no runbook_url under docs/operations/runbooks/")
            elif not os.path.isfile(os.path.join(RUNBOOKS, m.group(1))):
                errors += fail(f"{rel}: {name}'s runbook {m.group(1)} does not exist")
    print(f"rules: {len(alerts)} alert names")

    # Every alert fires in a test and stays quiet in another.
    fires, quiet = set(), set()
    for path in sorted(glob.glob(os.path.join(TESTS, "*.yml"))):
        with open(path, encoding="utf-8") as f:
            for test in yaml.safe_load(f).get("tests", []):
                for case in test.get("alert_rule_test", []):
                    (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    for name in sorted(alerts):
        if name not in fires:
            errors += fail(f"no promtool test makes {name} fire")
        if name not in quiet:
            errors += fail(f"no promtool test checks that {name} stays quiet")
    print(f"tests: every alert fires in a test and stays quiet in another" if not errors else "tests: checked")
    return errors


# --------------------------------------------------------------------- live
def query(base, expr):
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["data"]["result"]


def check_live(base):
    errors = 0
    ran = empty_ok = 0
    for path, board in dashboards():
        uid = board["uid"]
        for p in panels_of(board):
            targets = list(prometheus_targets(p))
            if not targets:
                continue
            key = (uid, p["title"])
            results = []
            for t in targets:
                expr = t["expr"]
                for var, value in GRAFANA_VARS.items():
                    expr = expr.replace("$" + var, value)
                try:
                    results.append(len(query(base, expr)))
                except Exception as e:  # noqa: BLE001 - reported as a failure
                    errors += fail(f"{uid} / {p['title']}: query error {e}: {expr}")
                    results.append(-1)
                ran += 1
            has_data = any(n > 0 for n in results)
            if key in EXPECTED_EMPTY:
                empty_ok += 1
                state = "data" if has_data else "empty (expected)"
                print(f"  {uid:22} {p['title'][:60]:60} {state}: {EXPECTED_EMPTY[key]}")
            elif not has_data:
                errors += fail(f"{uid} / {p['title']}: no data for {[t['expr'] for t in targets]}")
            else:
                print(f"  {uid:22} {p['title'][:60]:60} ok ({sum(max(n, 0) for n in results)} series)")
    print(f"live: {ran} queries; {empty_ok} panels allowed to be empty")
    return errors


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "static":
        errors = check_static()
    elif len(sys.argv) == 3 and sys.argv[1] == "live":
        errors = check_live(sys.argv[2])
    else:
        print(__doc__)
        return 2
    if errors:
        print(f"{errors} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
