"""What the tier node needs to keep its pod's deletion cost (tiernode/deletion_cost.py, #19 defect 6), and no more:
the downward API gives it its pod, a projected token in the one container reaches the API at the path the code
reads, RBAC lets its ServiceAccount patch pods in its namespace and nothing else (no other account gets anything),
the admission policy applied at bootstrap names the same account and annotation, and a NetworkPolicy lets tier pods
reach the API server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k8s import manifests, schemas
from tiernode.deletion_cost import ANNOTATION, SERVICE_ACCOUNT_DIR

ADMISSION = manifests.K8S_DIR / "admission" / "tier-node-pod-patch.yaml"
SA = ("percolate", "tier-node")


def _tier_deployments(objs: list[manifests.Obj]) -> list[manifests.Obj]:
    found = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"].startswith("tier-")]
    assert {o["metadata"]["name"] for o in found} == {"tier-a", "tier-b", "tier-c"}
    return found


def can(objs: list[manifests.Obj], account: tuple[str, str], verb: str, resource: str, namespace: str) -> bool:
    """Kubernetes RBAC for a ServiceAccount over the rendered Roles/ClusterRoles and their bindings. `resource` is
    [group/]resource[/subresource] as RBAC spells it (``pods``, ``pods/status``, ``apps:deployments/scale``)."""
    group, _, resource = resource.rpartition(":")
    roles = {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objs
        if o["kind"] in ("Role", "ClusterRole")
    }
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        bound_ns = binding["metadata"].get("namespace", "")
        if binding["kind"] == "RoleBinding" and bound_ns != namespace:
            continue
        subjects = binding.get("subjects") or []
        if not any(s["kind"] == "ServiceAccount" and (s.get("namespace"), s["name"]) == account for s in subjects):
            continue
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], bound_ns if ref["kind"] == "Role" else "", ref["name"])) or {}
        for rule in role.get("rules") or []:
            if (
                {group, "*"} & set(rule.get("apiGroups", []))
                and {resource, "*"} & set(rule.get("resources", []))
                and {verb, "*"} & set(rule.get("verbs", []))
            ):
                return True
    return False


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_tier_pods_know_their_pod_and_carry_one_token(env: str) -> None:
    objs = manifests.rendered_overlay(env)
    for dep in _tier_deployments(objs):
        spec = dep["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == SA[1] and spec["automountServiceAccountToken"] is False
        (node,) = spec["containers"]
        env_refs = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in node["env"]}
        assert env_refs["POD_NAME"] == "metadata.name" and env_refs["POD_NAMESPACE"] == "metadata.namespace"
        mounts = {m["name"]: m for m in node["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        (name,) = [n for n, v in volumes.items() if "projected" in v]
        assert mounts[name]["mountPath"] == str(SERVICE_ACCOUNT_DIR) and mounts[name]["readOnly"] is True
        paths = set()
        for source in volumes[name]["projected"]["sources"]:
            if "serviceAccountToken" in source:
                paths.add(source["serviceAccountToken"]["path"])
                assert source["serviceAccountToken"].get("expirationSeconds", 3600) <= 3607  # bound, short-lived
            for item in (source.get("configMap") or source.get("downwardAPI") or {}).get("items", []):
                paths.add(item["path"])
        assert paths == {"token", "ca.crt", "namespace"}  # what PodTarget.in_cluster reads
    for obj in objs:
        spec = manifests.pod_spec(obj)
        if spec is None or obj in _tier_deployments(objs):
            continue
        projected = [s for v in spec.get("volumes") or [] for s in (v.get("projected") or {}).get("sources", [])]
        assert not any("serviceAccountToken" in s for s in projected), f"{manifests.object_id(obj)} mounts a token"


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_the_tier_node_may_patch_pods_in_its_namespace_and_nothing_else(env: str) -> None:
    objs = manifests.rendered_overlay(env)
    assert can(objs, SA, "patch", "pods", "percolate")
    for verb, resource, namespace in [
        ("patch", "pods", "monitoring"),
        ("patch", "pods", "kube-system"),
        ("delete", "pods", "percolate"),
        ("create", "pods", "percolate"),
        ("update", "pods", "percolate"),
        ("patch", "pods/status", "percolate"),
        ("create", "pods/eviction", "percolate"),
        ("create", "pods/exec", "percolate"),
        ("get", "secrets", "percolate"),
        ("patch", "apps:deployments", "percolate"),
        ("patch", "apps:deployments/scale", "percolate"),
    ]:
        assert not can(objs, SA, verb, resource, namespace), (verb, resource, namespace)
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    subjects = {
        (s.get("namespace"), s["name"]) for o in objs if o["kind"] == "RoleBinding" for s in o.get("subjects") or []
    }
    assert subjects == {SA}  # no other account gets any right


def test_the_admission_policy_bounds_the_same_account_and_annotation() -> None:
    docs = [d for d in yaml.safe_load_all(ADMISSION.read_text()) if d]
    assert schemas.validate_schemas(docs) == []
    policy = manifests.find(docs, "ValidatingAdmissionPolicy", "tier-node-pod-patch")
    binding = manifests.find(docs, "ValidatingAdmissionPolicyBinding", "tier-node-pod-patch")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"] and policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    assert f"'system:serviceaccount:{SA[0]}:{SA[1]}'" in condition["expression"]
    assert {"expression": f"'{ANNOTATION}'", "name": "cost"} in policy["spec"]["variables"]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"]}]
    text = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for guarded in ("object.spec", "labels", "ownerReferences", "finalizers", "annotations", "pod-name"):
        assert guarded in text, guarded


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_tier_pods_may_reach_the_api_server(env: str) -> None:
    objs = manifests.rendered_overlay(env)
    tier_labels = manifests.pod_labels(_tier_deployments(objs)[0])
    ports = set()
    for pol in (o for o in objs if o["kind"] == "NetworkPolicy"):
        if "Egress" in pol["spec"]["policyTypes"] and manifests.selector_matches(
            pol["spec"]["podSelector"], tier_labels
        ):
            for rule in pol["spec"].get("egress") or []:
                if any("ipBlock" in peer and not peer["ipBlock"].get("except") for peer in rule.get("to") or []):
                    ports |= {p["port"] for p in rule.get("ports") or []}
    assert 443 in ports


def test_the_admission_folder_is_named_in_the_bootstrap_runbook() -> None:
    runbook = (manifests.REPO_ROOT / "docs" / "runbooks" / "argocd-bootstrap.md").read_text()
    assert f"kubectl apply -f {Path(ADMISSION.parent).relative_to(manifests.REPO_ROOT)}/" in runbook
