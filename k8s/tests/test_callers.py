"""The web workload run as the prod manifests run it (its container args, the rendered platform-config, secrets as
files), called the way every other part of the cluster calls it: kubelet's probes with their headers, Prometheus's
scrapes of every monitor that selects it (Host: pod IP and port), and the tier pods' internal API calls through the
URL their settings give (Host: web.percolate.svc:8000, plain HTTP). None may be redirected or refused for its Host.

Kinds this catches: production settings never exercised over HTTP as the other processes call them (#19 defect 1),
a monitor whose target is not served (defect 4)."""

import base64
import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from k8s import manifests, runtime
from k8s.tests.conftest import SERVICE_TOKEN
from tenants.models import Tenant


def call(port: int, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, str, bytes]:
    """One request, redirects not followed (urllib would follow a 301 to https:// on a plain-HTTP port and fail)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    data = json.dumps(body).encode() if body is not None else None
    try:
        conn.request(
            method, path, body=data, headers={**headers, **({"Content-Type": "application/json"} if data else {})}
        )
        resp = conn.getresponse()
        return resp.status, resp.getheader("Location") or "", resp.read()
    finally:
        conn.close()


@pytest.fixture
def web(prod: list[manifests.Obj], tmp_path: Path, transactional_db: None, platform_secrets: Any) -> Any:
    """The prod web Deployment's container, running locally; yields the map container port -> local port."""
    dep = manifests.find(prod, "Deployment", "web")
    container = runtime.containers(dep)[0]
    ports = {int(p["containerPort"]): runtime.free_port() for p in container["ports"]}
    env = runtime.local_env(runtime.container_env(prod, container), tmp_path, platform_secrets())
    command = runtime.local_command(container, ports)
    with runtime.run_local(command, env, ports[8000]):
        yield dep, ports


def test_every_caller_of_the_web_pods_is_answered(prod: list[manifests.Obj], web: Any, make_tenant: Any) -> None:
    dep, ports = web
    container = runtime.containers(dep)[0]
    tenant: Tenant = make_tenant(tier="B")
    problems = []
    # kubelet and Prometheus
    for c in runtime.probe_calls(container) + runtime.monitor_calls(prod, dep):
        if c.port not in ports:
            problems.append(f"{c.caller}: {c.path} on port {c.port}, which the web container does not listen on")
            continue
        status, location, body = call(ports[c.port], "GET", c.path, {**c.headers, "Host": c.host})
        if status != 200:
            problems.append(f"{c.caller}: GET {c.path} (Host {c.host}) answered {status} {location or body[:80]!r}")
    # Tier pods (and anything else whose settings name the web Service): the calls tiernode.platform_client makes.
    callers = runtime.service_url_callers(prod, dep)
    assert any("tier-" in who for who, _, _ in callers), callers
    for who, host, port in callers:
        headers = {"Host": host, "Authorization": f"Service {SERVICE_TOKEN}", "Accept": "application/json"}
        headers["X-Percolate-Service"] = "tier-node:10.1.2.3:8001"
        key = call(ports.get(port, 0), "GET", f"/api/internal/tenants/{tenant.id}/key", headers)
        state = call(
            ports.get(port, 0),
            "POST",
            f"/api/internal/tenants/{tenant.id}/state",
            headers,
            {"state": "hot", "generation": 1, "pod_id": "10.1.2.3:8001"},
        )
        for what, (status, location, body) in (("key fetch", key), ("state report", state)):
            if status != 200:
                problems.append(f"{who}: {what} via http://{host} answered {status} {location or body[:80]!r}")
        if key[0] == 200:
            assert len(base64.b64decode(json.loads(key[2])["key"])) == 32
    assert not problems, "\n".join(problems)


def test_monitors_select_a_served_port_of_some_workload() -> None:
    """Every monitor endpoint reaches a container port of at least one rendered workload (static half of defect 4;
    the web's scrape is made for real above)."""
    for env in manifests.OVERLAYS:
        objs = manifests.rendered_overlay(env)
        assert runtime.check_monitor_targets(objs) == [], env


@pytest.mark.parametrize("tier", ["a", "c"])
def test_every_caller_of_a_tier_pod_is_answered(
    prod: list[manifests.Obj], tmp_path: Path, platform_secrets: Any, tier: str
) -> None:
    """kubelet's probes and Prometheus's scrape of a prod tier pod, run as the reference tier node."""
    dep = manifests.find(prod, "Deployment", f"tier-{tier}")
    container = runtime.containers(dep)[0]
    ports = {int(p["containerPort"]): runtime.free_port() for p in container["ports"]}
    env = runtime.container_env(prod, container, secrets=platform_secrets())
    env = runtime.local_env(env, tmp_path, platform_secrets(), ports)
    calls = runtime.probe_calls(container) + runtime.monitor_calls(prod, dep)
    assert {c.caller for c in calls} >= {
        "kubelet livenessProbe",
        "kubelet readinessProbe",
        "PodMonitor/percolate/tier-nodes",
    }
    problems = []
    with runtime.run_local(runtime.local_command(container, ports), env, ports[8001]):
        for c in calls:
            status, _, body = call(ports[c.port], "GET", c.path, {**c.headers, "Host": c.host})
            if status != 200:
                problems.append(f"{c.caller}: GET {c.path} (Host {c.host}) answered {status} {body[:80]!r}")
    assert not problems, "\n".join(problems)
