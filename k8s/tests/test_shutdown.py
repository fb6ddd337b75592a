"""Tier pods keep accepting until the gateways stop routing to them, and their grace period covers the bounded
drain; the gateway's covers its stream drain (k8s/shutdown.py)."""

import pytest

from k8s import manifests, shutdown


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_shutdown_budgets_hold(env: str) -> None:
    assert shutdown.check_shutdown_budget(manifests.rendered_overlay(env)) == []


def test_a_grace_period_shorter_than_the_drain_is_reported() -> None:
    objs = manifests.rendered_overlay("prod")
    dep = manifests.find(objs, "Deployment", "tier-c")
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 60
    problems = shutdown.check_shutdown_budget([dep, *[o for o in objs if o["kind"] == "ConfigMap"]])
    assert len(problems) == 1 and "terminationGracePeriodSeconds 60 < preStop 15" in problems[0]
