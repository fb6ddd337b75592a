"""Leaving the hot set: drain a tenant's leases, flush and close its store, write its context blob, report the move.

Every move out of hot goes through ``Evictor.retire``: the LRU bound and the idle timer (→ warm), ``/internal/evict``
and shutdown (→ cold), and a fence from the platform (→ cold, no blob, no report).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from tiernode.manager_blobs import BlobWriter
from tiernode.manager_errors import StaleGeneration
from tiernode.manager_hotset import HotSet
from tiernode.manager_registry import TenantRegistry
from tiernode.manager_tasks import DiskThreads
from tiernode.metrics import NodeMetrics
from tiernode.tenant_record import CLOSING, COLD, HOT, WARM, Tenant

log = logging.getLogger("tiernode.manager")

Report = Callable[[uuid.UUID, str, int], None]  # (tenant, state, generation) to the platform, in the background


class Evictor:
    def __init__(
        self,
        *,
        registry: TenantRegistry,
        hot: HotSet,
        blobs: BlobWriter,
        disk: DiskThreads,
        metrics: NodeMetrics,
        report: Report,
        clock: Callable[[], float],
    ) -> None:
        self._registry = registry
        self._hot = hot
        self._blobs = blobs
        self._disk = disk
        self._metrics = metrics
        self._report = report
        self._clock = clock

    def push_out(self, t: Tenant, *, reason: str) -> Coroutine[Any, Any, str]:
        """``t``, just taken out of the hot set (LRU bound, idle timer), closes and goes warm: marked closing now, so
        a request that uses it again before the close gets its turn keeps it hot (``retire`` then does nothing)."""
        t.state = CLOSING
        return self.retire(t, WARM, reason=reason, only_if_closing=True)

    async def retire(
        self,
        t: Tenant,
        to_state: str,
        *,
        reason: str,
        only_if_closing: bool = False,
        write_blob: bool = True,
        report: bool = True,
    ) -> str:
        """Move ``t`` to warm or cold: drain leases, flush and close, write the context blob, report.

        Returns what happened to the context blob: written, current, skipped (and why) or failed.
        """
        async with self._registry.lock(t.tenant_id):
            if not self._registry.holds(t):
                return "current"  # gone already
            if only_if_closing and t.state != CLOSING:
                return "current"  # used again before the close got its turn: it stays hot
            from_state = HOT if t.store is not None else t.state
            self._hot.discard(t.tenant_id)
            snapshot = None
            if t.store is not None:
                t.state = CLOSING
                await t.drained.wait()
                store, t.store = t.store, None
                snapshot = await self._disk.run(self._blobs.snapshot_and_close, store)
                self._metrics.evictions.labels(reason=reason).inc()
                t.blob_current = False
            elif write_blob and not t.blob_current:
                snapshot = await self._disk.run(self._blobs.snapshot_from_disk, t.tenant_id)
            if to_state == WARM:
                t.state, t.state_since = WARM, self._clock()
            else:
                t.state = COLD
                self._registry.drop(t)
            if from_state != to_state:
                self._metrics.transitions.labels(from_state, to_state).inc()
            blob = "current" if t.blob_current else "skipped: not written"
            if snapshot is not None and write_blob:
                blob = await self._blobs.write_unless_cut(t, snapshot)
            t.key = None
            if report:
                self._report(t.tenant_id, to_state, t.generation)
            return blob

    async def evict(self, tenant_id: uuid.UUID, generation: int) -> dict[str, Any]:
        """``/internal/evict`` (once no load of the tenant is in flight): flush, close, write a fresh context blob;
        the tenant is cold on this pod after."""
        t = self._registry.get(tenant_id)
        if t is not None:
            if generation < t.generation:
                raise StaleGeneration(f"generation {generation} is stale; this pod holds {t.generation}")
            t.generation = generation
            from_state = HOT if t.store is not None else t.state
            blob = await self.retire(t, COLD, reason="requested")
            return _evicted(tenant_id, generation, from_state, blob)
        # Not held here (never loaded, or the pod restarted): still leave a fresh blob if the data is on this root.
        ghost = Tenant(tenant_id, generation, state=WARM)
        async with self._registry.lock(tenant_id):
            if tenant_id in self._registry:
                raise StaleGeneration(f"tenant {tenant_id} was loaded meanwhile; retry")
            snapshot = await self._disk.run(self._blobs.snapshot_from_disk, tenant_id)
        blob = "skipped: no data" if snapshot is None else await self._blobs.write(ghost, snapshot)
        return _evicted(tenant_id, generation, COLD, blob)

    async def fence(self, tenant_id: uuid.UUID, generation: int) -> None:
        """The platform refused ``generation`` as stale: another pod owns the tenant now. Let go, write nothing."""
        t = self._registry.get(tenant_id)
        if t is not None and t.generation == generation:
            log.warning("tenant %s generation %s is fenced off by the platform; closing it", tenant_id, generation)
            await self.retire(t, COLD, reason="fenced", write_blob=False, report=False)


def _evicted(tenant_id: uuid.UUID, generation: int, previous_state: str, blob: str) -> dict[str, Any]:
    return {
        "tenant_id": str(tenant_id),
        "state": COLD,
        "previous_state": previous_state,
        "generation": generation,
        "context_blob": blob,
    }
