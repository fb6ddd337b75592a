"""Scale-down stays within the eviction budget; a node drain or a busy node takes no service down
(k8s/capacity.py)."""

import pytest
import yaml

from k8s import capacity, manifests, schemas


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_scale_down_evicts_within_the_budget(env: str) -> None:
    assert capacity.check_scale_down_rate(manifests.rendered_overlay(env)) == []


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_availability(env: str) -> None:
    assert capacity.check_availability(env, manifests.rendered_overlay(env)) == []


def test_the_old_tier_c_policy_is_over_budget() -> None:
    objs = manifests.rendered_overlay("prod")
    hpa = manifests.find(objs, "HorizontalPodAutoscaler", "tier-c")
    hpa["spec"]["behavior"]["scaleDown"] = {
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 25, "periodSeconds": 60},
            {"type": "Pods", "value": 4, "periodSeconds": 60},
        ],
    }
    assert capacity.pods_removed_per_minute(hpa) == 50
    assert "may evict 1250 hot tenants a minute" in capacity.check_scale_down_rate([hpa])[0]


def test_cluster_add_ons_validate() -> None:
    docs = []
    for path in sorted((manifests.K8S_DIR / "cluster").rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert {d["kind"] for d in docs} == {"PriorityClass", "StorageClass"}
    assert schemas.validate_schemas(docs) == []
