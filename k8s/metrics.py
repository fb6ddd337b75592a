"""Monitoring, the project's own rule: dashboards, alert rules and the metrics adapter use only the metric names in
k8s/monitoring/exported-metrics.txt, and the adapter serves every Pods metric an HPA scales on. The rules' syntax and
behaviour are promtool's (`promtool check rules`, `promtool test rules`: k8s/tests/test_monitoring.py); the helpers
that write the PrometheusRules as rule files and run promtool are here.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from k8s.manifests import K8S_DIR, Obj, object_id, promtool

EXPORTED_METRICS_FILE = K8S_DIR / "monitoring" / "exported-metrics.txt"


def exported_metrics() -> dict[str, str]:
    """name -> type from exported-metrics.txt."""
    out: dict[str, str] = {}
    for line in EXPORTED_METRICS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, kind = line.split()[:2]
            out[name] = kind
    return out


def allowed_series_names() -> set[str]:
    names: set[str] = set()
    for name, kind in exported_metrics().items():
        names.add(name)
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a small tokenizer; enough for dashboards and alert rules)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"`[^`]*`", "", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    names: set[str] = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        token = m.group(0)
        rest = s[m.end() :].lstrip()
        if rest.startswith("(") or token.lower() in PROMQL_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", token):
            continue
        names.add(token)
    return names


def dashboard_queries(dashboard: Obj) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable."""
    out: list[tuple[str, str]] = []

    def walk_panels(panels: list[Obj]) -> None:
        for panel in panels or []:
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    out.append((f"panel {panel.get('title')!r}", target["expr"]))
            walk_panels(panel.get("panels") or [])

    walk_panels(dashboard.get("panels") or [])
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query or "")
        out.append((f"variable {var.get('name')!r}", m.group(1) if m else query or ""))
    return out


def dashboards(objs: Iterable[Obj]) -> list[tuple[Obj, str, Obj]]:
    """(ConfigMap, file key, parsed dashboard) for every Grafana dashboard ConfigMap."""
    found = []
    for obj in objs:
        if obj.get("kind") == "ConfigMap" and "grafana_dashboard" in (obj["metadata"].get("labels") or {}):
            for key, text in (obj.get("data") or {}).items():
                found.append((obj, key, json.loads(text)))
    return found


def check_monitoring(objs: list[Obj]) -> list[str]:
    """Dashboards parse and query only exported metrics; alert rules too; the adapter serves the HPAs' metric."""
    problems: list[str] = []
    allowed = allowed_series_names()
    boards = []
    for obj in objs:
        if obj.get("kind") == "ConfigMap" and "grafana_dashboard" in (obj["metadata"].get("labels") or {}):
            for key, text in (obj.get("data") or {}).items():
                try:
                    boards.append((obj, key, json.loads(text)))
                except json.JSONDecodeError as exc:
                    problems.append(f"{object_id(obj)}: {key} is not valid JSON: {exc}")
            if re.search(r"-[a-z0-9]{10}$", obj["metadata"]["name"]):
                problems.append(f"{object_id(obj)}: dashboard ConfigMap name carries a hash suffix")
    if not boards:
        problems.append("no Grafana dashboard ConfigMaps (label grafana_dashboard) rendered")
    for obj, key, board in boards:
        queries = dashboard_queries(board)
        if not queries:
            problems.append(f"{object_id(obj)}: {key} has no queries")
        for where, expr in queries:
            names = promql_metric_names(expr)
            if not names:
                problems.append(f"{object_id(obj)}: {key} {where} selects no metric: {expr}")
            for name in sorted(names - allowed):
                problems.append(f"{object_id(obj)}: {key} {where} queries {name}, not in exported-metrics.txt")
    for obj in objs:
        if obj.get("kind") != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                for name in sorted(promql_metric_names(rule["expr"]) - allowed):
                    label = rule.get("alert") or rule.get("record")
                    problems.append(f"{object_id(obj)}: rule {label} queries {name}, not in exported-metrics.txt")
    # prometheus-adapter must serve every Pods metric an HPA uses.
    served: set[str] = set()
    for obj in objs:
        if (
            obj.get("kind") == "ConfigMap"
            and "config.yaml" in (obj.get("data") or {})
            and "adapter" in obj["metadata"]["name"]
        ):
            for rule in yaml.safe_load(obj["data"]["config.yaml"]).get("rules") or []:
                series = promql_metric_names(rule["seriesQuery"])
                for name in sorted(series - allowed):
                    problems.append(f"{object_id(obj)}: adapter rule reads {name}, not in exported-metrics.txt")
                matches, as_ = rule["name"]["matches"], rule["name"].get("as", "")
                for name in series:
                    m = re.search(matches, name)
                    if m:
                        served.add(m.expand(as_.replace("${", "\\g<").replace("}", ">")) if as_ else name)
    for obj in objs:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            for metric in obj["spec"].get("metrics") or []:
                if metric.get("type") == "Pods" and metric["pods"]["metric"]["name"] not in served:
                    name = metric["pods"]["metric"]["name"]
                    problems.append(f"{object_id(obj)}: Pods metric {name} is not served by prometheus-adapter")
    return problems


def prometheus_rule_files(objs: Iterable[Obj], directory: Path) -> list[Path]:
    """Write each PrometheusRule's spec as a plain Prometheus rule file named <rule name>.rules.yaml."""
    paths = []
    for obj in objs:
        if obj.get("kind") == "PrometheusRule":
            path = directory / f"{obj['metadata']['name']}.rules.yaml"
            path.write_text(yaml.safe_dump(obj["spec"], sort_keys=False))
            paths.append(path)
    return paths


def run_promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (promtool with fixed arguments)
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
