"""The platform's one client to the tier pods: the workers' calls to their internal API (archival evicts a tenant
before it is archived; a tier move evicts from the old pod and warms on the new one) and the per-tenant metrics
scrape of their ``/metrics``. (The gateway has its own pool for its pod calls; the tier node never calls a pod.)

- **Where.** A call goes to a pod's internal address ``host:port`` (what tenant state records as ``pod_id``). A tier's
  pods now: ``tier_pods`` (the tier's headless Service ``GATEWAY_DNS_<tier>`` resolved when one is configured, else
  the static list ``GATEWAY_PODS_<tier>``, entries ``host:port/internal_port``); which of them the gateway routes a
  tenant to is its rendezvous ranking over the public addresses (``gateway.pods.hashing``, applied by the tier move).
- **Credential.** The platform's service credential (``PLATFORM_SERVICE_TOKEN``) as a bearer token: ``service_headers``.
- **Timeouts.** Each call's own (the caller's setting): the time to connect and then for each read.
- **Failures.** ``PodCallFailed``, classified: *unreachable* (nothing listens, no answer in time, a 5xx from a pod that
  is going away or failing: a later try or another pod may succeed) or *refused* (a 4xx: the pod answered and said
  no, e.g. a stale generation; the same call cannot succeed). The pod's status and error code are kept (``status``,
  ``pod_code``). An address that is not ``host:port`` is ``NotAPodAddress`` (unreachable; nothing is sent).

Plain ``http.client``: one connection per call (a worker makes a few per task), no proxy from the environment, no
redirect followed.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core.errors import PlatformError

MAX_ANSWER_BYTES = 64 << 10  # an internal call's JSON answer
MAX_METRICS_BYTES = 16 << 20  # a /metrics page (a few series per hot tenant)
# host:port, host a DNS name, IPv4 or [IPv6]; nothing that could change the URL's meaning (no '/', '@', '?', '#').
_POD_ADDRESS = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


class PodCallFailed(PlatformError):
    code = "pod_call_failed"
    http_status = 502

    def __init__(
        self, message: str, *, unreachable: bool, status: int | None = None, pod_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.status = status  # the pod's HTTP status, when it answered
        self.pod_code = pod_code  # the pod's error code, when it answered with one

    @property
    def refused(self) -> bool:
        """The pod answered and refused the call: retrying the same call cannot succeed."""
        return not self.unreachable


class NotAPodAddress(PodCallFailed):
    """The address is not ``host:port`` (tenant state names no pod, or something else): nothing was called."""


@dataclass(frozen=True)
class Pod:
    public: str  # host:port, the name on the gateway's hash ring
    internal: str  # host:internal_port, where /internal/ calls go (the pod's POD_ID)


@dataclass(frozen=True)
class PodAnswer:
    status: int
    doc: dict[str, Any]  # the JSON answer ({} when it was not a JSON object)


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


def service_headers() -> dict[str, str]:
    """The headers of every call: the service credential, and JSON both ways."""
    return {
        "Authorization": f"Bearer {settings.PLATFORM_SERVICE_TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def warm(address: str, tenant_id: uuid.UUID | str, *, generation: int, timeout: float) -> PodAnswer:
    """``POST /internal/warm/{tenant}``: the pod loads the tenant at ``generation`` (refused if stale)."""
    return call(address, "warm", tenant_id, generation=generation, timeout=timeout)


def evict(address: str, tenant_id: uuid.UUID | str, *, generation: int, timeout: float) -> PodAnswer:
    """``POST /internal/evict/{tenant}``: the pod flushes, closes and blobs the tenant and lets it go."""
    return call(address, "evict", tenant_id, generation=generation, timeout=timeout)


def call(address: str, action: str, tenant_id: uuid.UUID | str, *, generation: int, timeout: float) -> PodAnswer:
    """``POST /internal/{action}/{tenant}`` with the generation; the pod's 2xx answer, or raise PodCallFailed."""
    where = f"pod {address} did not {action} tenant {tenant_id} (generation {generation})"
    body = json.dumps({"generation": generation}).encode()
    path, headers = f"/internal/{action}/{tenant_id}", service_headers()
    status, raw = _exchange(address, "POST", path, body, headers, timeout=timeout, limit=MAX_ANSWER_BYTES, where=where)
    doc = _json_object(raw)
    if status >= 300:
        error = doc.get("error")
        error = error if isinstance(error, dict) else {}
        pod_code = error.get("code") if isinstance(error.get("code"), str) else None
        # 5xx: the pod is going away or failing (as good as no answer); 4xx: it refused this call.
        message = f"{where}: HTTP {status}{_detail(error, raw)}"
        raise PodCallFailed(message, unreachable=status >= 500, status=status, pod_code=pod_code)
    return PodAnswer(status, doc)


def metrics(address: str, *, timeout: float) -> str:
    """``GET /metrics`` (Prometheus text, no credential needed): the platform's per-tenant metrics scrape."""
    where = f"pod {address} did not answer /metrics"
    headers = {"Accept": "text/plain"}
    status, raw = _exchange(
        address, "GET", "/metrics", None, headers, timeout=timeout, limit=MAX_METRICS_BYTES, where=where
    )
    if status != 200:
        raise PodCallFailed(f"{where}: HTTP {status}", unreachable=status >= 500, status=status)
    return raw.decode("utf-8", "replace")


def _exchange(
    address: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    timeout: float,
    limit: int,
    where: str,
) -> tuple[int, bytes]:
    """One request on its own connection: the status and the body (its first ``limit`` bytes), or unreachable."""
    if not _POD_ADDRESS.match(address or ""):
        raise NotAPodAddress(f"{where}: {address!r} is not a pod address (host:port)", unreachable=True)
    conn = http.client.HTTPConnection(address, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(limit)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        reason = f"no answer within {timeout:g}s" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
        raise PodCallFailed(f"{where}: {reason}", unreachable=True) from exc
    finally:
        conn.close()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _detail(error: dict[str, Any], raw: bytes) -> str:
    """`` (code: message)`` from the pod's JSON error, else the start of what it sent."""
    code, message = error.get("code"), error.get("message")
    if code or message:
        return f" ({code}: {message})" if code else f" ({message})"
    text = raw[:300].decode("utf-8", "replace").strip()
    return f" {text}" if text else ""
