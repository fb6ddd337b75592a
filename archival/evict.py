"""Evicting a hot or warm tenant through its tier pod before it is archived (issue 4, item 5).

The pod named in tenant state (``pod_id``, the pod's address ``host:port``) is asked to let the tenant go:
``POST http://{pod_id}/internal/evict/{tenant_id}`` with ``{"generation": N}`` and the platform's service credential.
It flushes, closes the tenant's RocksDB and writes a fresh context blob, then answers 200 (409 if N is stale).
Only after that 200 is the state moved hot/warm -> cold (generation-checked), and only then is the archive lease
taken. Nothing is deleted on any failure here: an unanswered pod fails the job with the pod's address and the reason.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from django.conf import settings

from archival.jobs import ArchivalError, TransientArchivalError

# host:port, host a DNS name, IPv4 or [IPv6]; nothing that could change the URL's meaning (no '/', '@', '?', '#').
_POD_ADDRESS = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


@dataclass(frozen=True)
class Eviction:
    pod_id: str
    generation: int
    status: int
    previous_state: str | None


def timeout_seconds() -> float:
    return float(settings.ARCHIVE_EVICT_TIMEOUT_SECONDS)


def evict_url(pod_id: str, tenant_id: uuid.UUID | str) -> str:
    if not _POD_ADDRESS.match(pod_id or ""):
        raise ArchivalError(f"pod id {pod_id!r} is not a pod address (host:port); cannot evict tenant {tenant_id}")
    return f"http://{pod_id}/internal/evict/{tenant_id}"


def evict(*, pod_id: str, tenant_id: uuid.UUID | str, generation: int, timeout: float | None = None) -> Eviction:
    """Ask the pod to evict the tenant at ``generation``; raise unless it answers 2xx.

    Unreachable, timed out or 5xx: TransientArchivalError (the task retries with backoff). 4xx (stale generation,
    refused credential, bad request): ArchivalError, since retrying the same call cannot succeed.
    """
    url = evict_url(pod_id, tenant_id)
    wait = timeout_seconds() if timeout is None else timeout
    request = urllib.request.Request(  # noqa: S310 - the scheme is fixed to http above
        url,
        data=json.dumps({"generation": generation}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {settings.PLATFORM_SERVICE_TOKEN}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    where = f"pod {pod_id} did not evict tenant {tenant_id} (generation {generation})"
    try:
        with urllib.request.urlopen(request, timeout=wait) as response:  # noqa: S310
            status = response.status
            body = response.read(64 << 10)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc.read(4096) if exc.fp else b"")
        cls = TransientArchivalError if exc.code >= 500 else ArchivalError
        raise cls(f"{where}: HTTP {exc.code}{detail}; nothing archived or deleted") from exc
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {wait:g}s"
        raise TransientArchivalError(f"{where}: {reason}; nothing archived or deleted") from exc
    previous = None
    try:
        doc = json.loads(body or b"{}")
        previous = doc.get("previous_state") if isinstance(doc, dict) else None
    except ValueError:
        pass
    return Eviction(pod_id=pod_id, generation=generation, status=status, previous_state=previous)


def _error_detail(body: bytes) -> str:
    try:
        doc = json.loads(body)
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        message = err.get("message") if isinstance(err, dict) else None
        code = err.get("code") if isinstance(err, dict) else None
    except ValueError:
        return ""
    if message or code:
        return f" ({code}: {message})" if code else f" ({message})"
    return ""
