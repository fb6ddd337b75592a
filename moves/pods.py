"""The tier pods' internal API as the platform's workers reach it (the way archival evicts): evict a tenant from the
pod recorded in tenant state, warm it on the new tier's pod that the gateway will route it to.

Which pod: the gateway's own rule (rendezvous hashing over the tier's pods, `gateway.pods.hashing`), over the same pod
list (GATEWAY_PODS_<tier>, or the tier's headless Service GATEWAY_DNS_<tier> in Kubernetes), so the warmed pod is
the one the tenant's next request reaches.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from django.conf import settings

from gateway.pods.hashing import ranked_pods
from tenants.errors import PlatformError


class PodCallFailed(PlatformError):
    code = "pod_call_failed"
    http_status = 502

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Pod:
    public: str  # host:port, the name on the gateway's hash ring
    internal: str  # host:internal_port, where /internal/ calls go (the pod's POD_ID)


def tier_pods(tier: str) -> list[Pod]:
    """The tier's pods now: the headless Service resolved when one is configured, else the static list."""
    dns = settings.GATEWAY_TIER_DNS.get(tier, "")
    if dns:
        try:
            infos = socket.getaddrinfo(dns, settings.GATEWAY_POD_PORT, type=socket.SOCK_STREAM)
        except OSError:
            return []
        hosts = sorted({str(info[4][0]) for info in infos})
        return [
            Pod(f"{host}:{settings.GATEWAY_POD_PORT}", f"{host}:{settings.GATEWAY_POD_INTERNAL_PORT}") for host in hosts
        ]
    pods = []
    for entry in settings.GATEWAY_TIER_PODS.get(tier, []):
        public, _, internal_port = entry.partition("/")
        host = public.rpartition(":")[0]
        pods.append(Pod(public, f"{host}:{internal_port or settings.GATEWAY_POD_INTERNAL_PORT}"))
    return pods


def ranked(tier: str, tenant_id: uuid.UUID | str) -> list[Pod]:
    """The tier's pods in the gateway's order of preference for this tenant."""
    by_public = {pod.public: pod for pod in tier_pods(tier)}
    return [by_public[name] for name in ranked_pods(str(tenant_id), by_public)]


def call(address: str, action: str, tenant_id: uuid.UUID | str, generation: int, timeout: float) -> dict:
    """POST /internal/{action}/{tenant} with the generation and the service credential; the JSON answer, or raise."""
    request = urllib.request.Request(
        f"http://{address}/internal/{action}/{tenant_id}",
        data=json.dumps({"generation": generation}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {settings.PLATFORM_SERVICE_TOKEN}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    where = f"pod {address} did not {action} tenant {tenant_id} (generation {generation})"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read(64 << 10)
    except urllib.error.HTTPError as exc:
        body = exc.read(4096) if exc.fp else b""
        detail = body[:300].decode("utf-8", "replace")
        # 5xx: the pod is going away or failing (as good as no answer); 4xx: it refused this call.
        raise PodCallFailed(f"{where}: HTTP {exc.code} {detail}", unreachable=exc.code >= 500) from exc
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {timeout:g}s"
        raise PodCallFailed(f"{where}: {reason}", unreachable=True) from exc
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        doc = {}
    return doc if isinstance(doc, dict) else {}
