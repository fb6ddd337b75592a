"""The edge as the cloud runs it (#19 defect 8): certificates can be issued, clients cannot forge their address,
and rolling updates wait for the load balancer.

- every Ingress whose certificate cert-manager issues (HTTP-01) has a NetworkPolicy letting the ingress controller's
  namespace reach the solver pods (label acme.cert-manager.io/http01-solver) on 8089;
- behind a TCP load balancer (AWS NLB, backend protocol tcp) nothing sets X-Forwarded-For, so the workloads behind it
  trust no forwarded headers (GATEWAY_TRUSTED_PROXIES empty) and the target group preserves the client address;
- a namespace with NLB ip targets carries the AWS Load Balancer Controller's readiness-gate label.
"""

from __future__ import annotations

from k8s.manifests import Obj, object_id, selector_matches
from k8s.runtime import container_env, containers, workloads

SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_PORT = 8089
AWS = "service.beta.kubernetes.io/aws-load-balancer-"
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


def _solver_reachable(objs: list[Obj], controller_namespace: str) -> bool:
    for pol in objs:
        if pol.get("kind") != "NetworkPolicy" or not selector_matches(pol["spec"].get("podSelector"), SOLVER_LABELS):
            continue
        for rule in pol["spec"].get("ingress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            sources = [f.get("namespaceSelector") for f in rule.get("from") or []]
            ns_labels = {"kubernetes.io/metadata.name": controller_namespace}
            if (not ports or SOLVER_PORT in ports) and any(
                s is not None and selector_matches(s, ns_labels) for s in sources
            ):
                return True
    return False


def check_edge(objs: list[Obj]) -> list[str]:
    problems = []
    for ing in objs:
        annotations = ing.get("metadata", {}).get("annotations") or {}
        if (
            ing.get("kind") == "Ingress"
            and ing["spec"].get("tls")
            and any(k.startswith("cert-manager.io/") for k in annotations)
        ):
            controller = (
                "ingress-nginx"
                if ing["spec"].get("ingressClassName") == "nginx"
                else ing["spec"].get("ingressClassName", "")
            )
            if not _solver_reachable(objs, controller):
                problems.append(
                    f"{object_id(ing)}: no NetworkPolicy lets {controller} reach cert-manager's HTTP-01 solver "
                    f"on {SOLVER_PORT}"
                )
    namespaces = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "Namespace"}
    for svc in objs:
        annotations = svc.get("metadata", {}).get("annotations") or {}
        if svc.get("kind") != "Service" or annotations.get(AWS + "backend-protocol") != "tcp":
            continue
        sid = object_id(svc)
        if "preserve_client_ip.enabled=true" not in annotations.get(AWS + "target-group-attributes", ""):
            problems.append(f"{sid}: the NLB's ip targets see its own address unless preserve_client_ip is enabled")
        ns = namespaces.get(svc["metadata"].get("namespace", ""))
        ip_targets = annotations.get(AWS + "nlb-target-type") == "ip"
        if (
            ip_targets
            and ns is not None
            and (ns["metadata"].get("labels") or {}).get(READINESS_GATE_LABEL) != "enabled"
        ):
            problems.append(f"{object_id(ns)}: lacks {READINESS_GATE_LABEL}=enabled for {sid}'s ip targets")
        for w in workloads(objs):
            labels = (w["spec"].get("template", {}).get("metadata") or {}).get("labels") or {}
            if not selector_matches({"matchLabels": svc["spec"].get("selector") or {"-": "-"}}, labels):
                continue
            for c in containers(w):
                if container_env(objs, c).get("GATEWAY_TRUSTED_PROXIES"):
                    problems.append(
                        f"{object_id(w)}: trusts forwarded headers behind {sid}, a TCP load balancer that sets none"
                    )
    return problems
