"""Tier figures, the project's own rule: replicas, HPA bounds and targets, the pods' tier environment and ports agree
with core/tier_policy.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.tier_policy import DEFAULT_TIER_POLICY
from k8s.isolation import TIER_INTERNAL_PORT, TIER_PUBLIC_PORT
from k8s.manifests import Obj, find, object_id


def tier_policy() -> dict[str, Any]:
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
