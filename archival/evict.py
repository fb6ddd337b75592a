"""Evicting a hot or warm tenant through its tier pod before it is archived (issue 4, item 5).

The pod named in tenant state (``pod_id``, the pod's address ``host:port``) is asked to let the tenant go:
``POST http://{pod_id}/internal/evict/{tenant_id}`` with ``{"generation": N}`` and the platform's service credential.
It flushes, closes the tenant's RocksDB and writes a fresh context blob, then answers 200 (409 if N is stale).
Only after that 200 is the state moved hot/warm -> cold (generation-checked), and only then is the archive lease
taken. Nothing is deleted on any failure here: an unanswered pod fails the job with the pod's address and the reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from archival.jobs import ArchivalError, TransientArchivalError
from tenants import pods


@dataclass(frozen=True)
class Eviction:
    pod_id: str
    generation: int
    status: int
    previous_state: str | None


def timeout_seconds() -> float:
    return float(settings.ARCHIVE_EVICT_TIMEOUT_SECONDS)


def evict(*, pod_id: str, tenant_id: uuid.UUID | str, generation: int, timeout: float | None = None) -> Eviction:
    """Ask the pod to evict the tenant at ``generation`` (the platform's pod client, ``tenants.pods``); raise unless
    it answers 2xx.

    Unreachable, timed out or 5xx: TransientArchivalError (the task retries with backoff). Refused (4xx: stale
    generation, refused credential, bad request) or no pod address: ArchivalError, since retrying cannot succeed.
    """
    wait = timeout_seconds() if timeout is None else timeout
    try:
        answer = pods.evict(pod_id, tenant_id, generation=generation, timeout=wait)
    except pods.PodCallFailed as exc:
        transient = exc.unreachable and not isinstance(exc, pods.NotAPodAddress)
        cls = TransientArchivalError if transient else ArchivalError
        raise cls(f"{exc.message}; nothing archived or deleted") from exc
    previous = answer.doc.get("previous_state")
    return Eviction(
        pod_id=pod_id,
        generation=generation,
        status=answer.status,
        previous_state=previous if isinstance(previous, str) else None,
    )
