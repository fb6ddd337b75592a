"""Certificates can be issued, clients cannot forge their address, rolling updates wait for the NLB (k8s/edge.py)."""

import pytest

from k8s import edge, manifests


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_the_edge_holds(env: str) -> None:
    assert edge.check_edge(manifests.rendered_overlay(env)) == []


def test_trusting_forwarded_headers_behind_the_nlb_is_reported() -> None:
    objs = manifests.rendered_overlay("prod")
    gateway = manifests.find(objs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    gateway["env"].append({"name": "GATEWAY_TRUSTED_PROXIES", "value": "*"})
    objs = [o for o in objs if o["metadata"]["name"] != "acme-http01-solver-ingress"]
    problems = edge.check_edge(objs)
    assert any(
        "Deployment/percolate/gateway: trusts forwarded headers behind Service/percolate/gateway" in p for p in problems
    )
    assert any(p.startswith("Ingress/percolate/web: no NetworkPolicy lets ingress-nginx reach") for p in problems)
