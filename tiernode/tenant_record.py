"""What the tenant manager knows of one tenant on this pod, and the states it moves between."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from tiernode.store import TenantStore

HOT, WARM, COLD, CLOSING = "hot", "warm", "cold", "closing"


@dataclass(eq=False)
class Tenant:
    tenant_id: uuid.UUID
    generation: int
    state: str = COLD
    store: TenantStore | None = None
    last_used: float = 0.0
    state_since: float = 0.0
    leases: int = 0
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    key: tuple[str, bytes] | None = None  # held only while the tenant is hot
    blob_current: bool = False  # the stored context blob reflects the data on disk
    requests: int = 0  # chat requests served since the tenant was last loaded here (per-tenant /metrics)
    load_seconds: float = 0.0  # how long its last load took

    def __post_init__(self) -> None:
        self.drained.set()

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "state": self.state,
            "generation": self.generation,
            "idle_seconds": round(max(0.0, now - (self.last_used if self.state == HOT else self.state_since)), 3),
            "leases": self.leases,
            "message_count": self.store.message_count if self.store is not None else None,
        }


class LoadJob:
    """One single-flight load: its task, and how many waiting callers it hands a lease to when it completes."""

    task: asyncio.Task[tuple[Tenant, float, str]]

    def __init__(self) -> None:
        self.leases = 0
