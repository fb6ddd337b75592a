"""Shutdown against the gateway's view of the pods (#19 defect 7): a pod must keep accepting until every gateway
has stopped sending to it, and its grace period must cover the drain the code bounds.

A tier pod's SIGTERM arrives after its preStop; from then on the node stops accepting (uvicorn's graceful stop of
in-flight requests, GRACEFUL_SHUTDOWN_SECONDS), drains its tenants (bounded by PERCOLATE_DRAIN_SECONDS), and delivers
the last state reports (REPORT_DRAIN_SECONDS). Meanwhile the gateways learn of the pod's removal only when their
DNS refresh (gateway.pods.discovery) sees the headless Service's record gone, itself cached for the DNS TTL.
"""

from __future__ import annotations

import inspect

from gateway import __main__ as gateway_main
from gateway.pods.discovery import Discovery
from k8s.manifests import Obj, object_id
from k8s.runtime import container_env, containers, image_name
from tiernode import __main__ as node_main
from tiernode.app import REPORT_DRAIN_SECONDS
from tiernode.config import NodeConfig

DNS_TTL_SECONDS = 5  # CoreDNS's kubernetes plugin answers service records with a 5 s TTL (its default)
MARGIN_SECONDS = 5


def gateway_view_seconds() -> float:
    """How long a gateway may still route to a pod that left the endpoints."""
    refresh = inspect.signature(Discovery.__init__).parameters["refresh_seconds"].default
    return float(refresh) + DNS_TTL_SECONDS


def pre_stop_seconds(container: Obj) -> float:
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return float(pre["sleep"]["seconds"])
    words = (pre.get("exec") or {}).get("command") or []
    return float(words[-1]) if words[:1] == ["sleep"] else 0.0


def check_shutdown_budget(objs: list[Obj]) -> list[str]:
    problems = []
    for obj in objs:
        if obj.get("kind") != "Deployment":
            continue
        for c in containers(obj):
            image = image_name(c)
            grace = float(obj["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30))
            pre = pre_stop_seconds(c)
            where = f"{object_id(obj)} container {c['name']}"
            if image in ("percolate", "percolate-tiernode"):
                env = container_env(objs, c)
                drain = float(env.get("PERCOLATE_DRAIN_SECONDS") or NodeConfig.drain_seconds)
                if pre <= gateway_view_seconds():
                    problems.append(
                        f"{where}: preStop waits {pre:g} s, but a gateway may route to the pod for "
                        f"{gateway_view_seconds():g} s (DNS refresh + TTL) after it leaves the endpoints"
                    )
                need = pre + node_main.GRACEFUL_SHUTDOWN_SECONDS + drain + REPORT_DRAIN_SECONDS + MARGIN_SECONDS
                if grace < need:
                    problems.append(
                        f"{where}: terminationGracePeriodSeconds {grace:g} < preStop {pre:g} + graceful stop "
                        f"{node_main.GRACEFUL_SHUTDOWN_SECONDS} + drain {drain:g} + reports {REPORT_DRAIN_SECONDS:g} "
                        f"+ margin {MARGIN_SECONDS} = {need:g}"
                    )
            elif c.get("args", [])[:3] == ["python", "-m", "gateway"]:
                need = pre + gateway_main.DRAIN_SECONDS + MARGIN_SECONDS
                if grace < need:
                    problems.append(
                        f"{where}: terminationGracePeriodSeconds {grace:g} < preStop {pre:g} + stream drain "
                        f"{gateway_main.DRAIN_SECONDS} + margin {MARGIN_SECONDS} = {need:g}"
                    )
    return problems
