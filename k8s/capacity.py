"""Capacity under change: how fast an HPA may evict tenants (#19 defect 6) and whether a node drain or a busy node
can take a service down (#19 defect 11).

- check_scale_down_rate: at its largest, each tier's HPA removes at most EVICTIONS_PER_MINUTE_BUDGET hot tenants a
  minute (pods removed a minute x the tier's max hot per pod); several policies must combine with selectPolicy Min.
- check_availability: every Deployment with a PodDisruptionBudget keeps a pod through a voluntary disruption (its
  minimum replicas exceed the budget's maxUnavailable); every workload names a PriorityClass installed with the cluster
  (k8s/cluster/<env>/), tier A and the gateway the highest and batch work the lowest; tier A is Guaranteed QoS; no
  liveness probe goes through the broker (a Redis blip must not restart every worker); a singleton is a StatefulSet.
"""

from __future__ import annotations

import math

import yaml

from k8s.manifests import K8S_DIR, Obj, object_id, pod_spec, selector_matches
from k8s.tier_figures import tier_policy

EVICTIONS_PER_MINUTE_BUDGET = 60  # hot tenants a tier may lose to scale-down in a minute (docs/decisions.md, #19)
# Which workloads must outrank which: (higher, lower) PriorityClass roles.
CRITICAL = {"tier-a", "gateway"}
BATCH = {"worker", "beat", "backup-platform-db", "migrate"}


def pods_removed_per_minute(hpa: Obj) -> float:
    spec = hpa["spec"]
    down = (spec.get("behavior") or {}).get("scaleDown") or {}
    if down.get("selectPolicy") == "Disabled":
        return 0.0
    policies = down.get("policies") or [{"type": "Percent", "value": 100, "periodSeconds": 15}]  # Kubernetes' default
    rates = []
    for p in policies:
        pods = p["value"] if p["type"] == "Pods" else math.ceil(spec["maxReplicas"] * p["value"] / 100)
        rates.append(pods * 60 / p["periodSeconds"])
    return min(rates) if down.get("selectPolicy") == "Min" else max(rates)


def check_scale_down_rate(objs: list[Obj]) -> list[str]:
    problems = []
    for tier, policy in tier_policy().items():
        hpa = next((o for o in objs if o.get("kind") == "HorizontalPodAutoscaler"
                    and o["metadata"]["name"] == f"tier-{tier.lower()}"), None)  # fmt: skip
        if hpa is None:
            continue
        rate = pods_removed_per_minute(hpa) * policy.max_hot_per_pod
        if rate > EVICTIONS_PER_MINUTE_BUDGET:
            problems.append(
                f"{object_id(hpa)}: at {hpa['spec']['maxReplicas']} pods scale-down may evict {rate:g} hot tenants a "
                f"minute ({policy.max_hot_per_pod} a pod), over the budget of {EVICTIONS_PER_MINUTE_BUDGET}"
            )
    return problems


def priority_classes(env: str) -> dict[str, int]:
    found = {}
    paths = sorted((K8S_DIR / "cluster" / env).glob("*.yaml")) + sorted((K8S_DIR / "cluster" / "common").glob("*.yaml"))
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "PriorityClass":
                found[doc["metadata"]["name"]] = int(doc["value"])
    return found


def _min_replicas(obj: Obj, objs: list[Obj]) -> int:
    for hpa in objs:
        if (
            hpa.get("kind") == "HorizontalPodAutoscaler"
            and hpa["spec"]["scaleTargetRef"]["name"] == obj["metadata"]["name"]
        ):
            return int(hpa["spec"].get("minReplicas", 1))
    return int(obj["spec"].get("replicas", 1))


def check_availability(env: str, objs: list[Obj]) -> list[str]:
    problems = []
    classes = priority_classes(env)
    values: dict[str, int] = {}
    for obj in objs:
        spec = pod_spec(obj)
        if spec is None or obj["metadata"].get("namespace") != "percolate":
            continue
        name, oid = obj["metadata"]["name"], object_id(obj)
        klass = spec.get("priorityClassName")
        if klass not in classes:
            problems.append(f"{oid}: priorityClassName {klass!r} is not a PriorityClass in k8s/cluster/{env}")
        else:
            values[name] = classes[klass]
        for c in spec.get("containers") or []:
            probe = " ".join(map(str, ((c.get("livenessProbe") or {}).get("exec") or {}).get("command") or []))
            if "inspect ping" in probe:
                problems.append(f"{oid}: liveness of {c['name']} goes through the broker (`celery inspect ping`)")
        recreate = (obj["spec"].get("strategy") or {}).get("type") == "Recreate"
        if obj["kind"] == "Deployment" and recreate and env == "prod":  # dev: one kind node, no partitions
            problems.append(
                f"{oid}: a singleton (Recreate) as a Deployment: its replacement starts while a partitioned node may "
                "still run the old pod; a StatefulSet of one starts it only once the old pod is gone"
            )
        if obj["kind"] != "Deployment" or env != "prod":  # dev runs one small replica of everything on a laptop
            continue
        labels = (obj["spec"]["template"].get("metadata") or {}).get("labels") or {}
        for pdb in objs:
            if pdb.get("kind") == "PodDisruptionBudget" and selector_matches(pdb["spec"].get("selector"), labels):
                least = _min_replicas(obj, objs) - int(pdb["spec"].get("maxUnavailable", 0))
                if "minAvailable" in pdb["spec"]:
                    least = min(least, int(pdb["spec"]["minAvailable"]))
                if least < 1:
                    problems.append(
                        f"{oid}: at its minimum replicas, {object_id(pdb)} lets a node drain take every pod"
                    )
        if name == "tier-a":
            for c in spec.get("containers") or []:
                r = c.get("resources") or {}
                if r.get("requests") != r.get("limits"):
                    problems.append(f"{oid}: container {c['name']} is not Guaranteed QoS (requests != limits)")
    lowest_critical = min((values[n] for n in CRITICAL if n in values), default=None)
    for name, value in values.items():
        if lowest_critical is not None and name not in CRITICAL and value >= lowest_critical:
            problems.append(f"{name}: priority {value} is not below tier A's and the gateway's ({lowest_critical})")
    top_batch = max((values[n] for n in BATCH if n in values), default=None)
    for name in set(values) - BATCH:
        if top_batch is not None and values[name] <= top_batch:
            problems.append(f"{name}: priority {values[name]} does not outrank batch work ({top_batch})")
    return problems
