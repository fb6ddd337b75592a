"""Leaving the hot set: drain, flush and close a tenant, write its sealed context blob, report the move."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from functools import partial
from typing import Any

from tiernode.blob import build_context, context_key, seal_context
from tiernode.manager_errors import StaleGeneration
from tiernode.manager_state import ManagerState
from tiernode.platform_client import PlatformRefused, PlatformUnavailable
from tiernode.store import TenantStore, tenant_path
from tiernode.tenant_record import CLOSING, COLD, HOT, WARM, Tenant

log = logging.getLogger("tiernode.manager")


class Eviction(ManagerState):
    """Part of TenantManager: moves out of the hot set (``retire``), ``/internal/evict`` and fencing."""

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
        async with self._lock(t.tenant_id):
            if self.tenants.get(t.tenant_id) is not t:
                return "current"  # gone already
            if only_if_closing and t.state != CLOSING:
                return "current"  # used again before the close got its turn: it stays hot
            from_state = HOT if t.store is not None else t.state
            self.hot.pop(t.tenant_id, None)
            snapshot = None
            if t.store is not None:
                t.state = CLOSING
                await t.drained.wait()
                store, t.store = t.store, None
                snapshot = await self._run(self._snapshot_and_close, store)
                self.metrics.evictions.labels(reason=reason).inc()
                t.blob_current = False
            elif write_blob and not t.blob_current:
                snapshot = await self._run(self._snapshot_from_disk, t.tenant_id)
            if to_state == WARM:
                t.state, t.state_since = WARM, self.clock()
            else:
                t.state = COLD
                del self.tenants[t.tenant_id]
            if from_state != to_state:
                self.metrics.transitions.labels(from_state, to_state).inc()
            blob = "current" if t.blob_current else "skipped: not written"
            if snapshot is not None and write_blob:
                blob = await self._write_blob_unless_cut(t, snapshot)
            t.key = None
            if report:
                self._report(t.tenant_id, to_state, t.generation)
            return blob

    def _snapshot_and_close(self, store: TenantStore) -> dict[str, Any] | None:
        try:
            snapshot = store.context_snapshot(self.cfg.recent_messages_in_blob)
        except Exception:
            log.exception("context snapshot of %s failed", store.tenant_id)
            snapshot = None
        store.close()
        return snapshot

    def _snapshot_from_disk(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        if not tenant_path(self.cfg.data_root, tenant_id).is_dir():
            return None
        store = self.open_store(self.cfg.data_root, tenant_id)
        return self._snapshot_and_close(store)

    async def _write_blob_unless_cut(self, t: Tenant, snapshot: dict[str, Any]) -> str:
        """The context blob is a cache (the data is on the volume): a shutdown past its deadline abandons it, at any
        step (key fetch, seal, upload; an S3 PUT is all or nothing), so the tenant is still reported."""
        if self.drain_cut.is_set():
            return "skipped: drain deadline"
        writing = asyncio.ensure_future(self._write_blob(t, snapshot))
        cut = asyncio.ensure_future(self.drain_cut.wait())
        try:
            await asyncio.wait({writing, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
        if writing.done():
            return writing.result()
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        self.metrics.context_blobs.labels(result="drain_deadline").inc()
        return "skipped: drain deadline"

    async def _write_blob(self, t: Tenant, snapshot: dict[str, Any]) -> str:
        if self.object_store is None:
            return "skipped: no object store"
        key = t.key
        if key is None:
            if self.key_fetcher is None:
                return "skipped: no key source"
            try:
                key = await asyncio.wait_for(self.key_fetcher(t.tenant_id), self.cfg.platform_timeout_seconds * 2)
            except PlatformRefused as exc:
                self.metrics.context_blobs.labels(result="no_key").inc()
                return f"skipped: {exc.code}"  # mobile_only tenants: the platform may not read their memory
            except (PlatformUnavailable, TimeoutError) as exc:
                self.metrics.context_blobs.labels(result="no_key").inc()
                log.warning("no context blob for %s: data key unavailable (%s)", t.tenant_id, exc)
                return "skipped: key unavailable"
        try:
            data = build_context(snapshot, generation=t.generation, pod_id=self.cfg.pod_id)
            sealed = await self._run(partial(seal_context, data, tenant_id=t.tenant_id, key_id=key[0], key=key[1]))
            await self.object_store.put(context_key(t.tenant_id), sealed)
        except Exception:
            self.metrics.context_blobs.labels(result="failed").inc()
            log.exception("writing the context blob of %s failed", t.tenant_id)
            return "failed"
        self.metrics.context_blobs.labels(result="written").inc()
        t.blob_current = True
        return "written"

    async def evict(self, tenant_id: uuid.UUID, generation: int) -> dict[str, Any]:
        """``/internal/evict``: flush, close, write a fresh context blob; the tenant is cold on this pod after."""
        job = self._loading.get(tenant_id)
        if job is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(job.task)
        t = self.tenants.get(tenant_id)
        if t is not None:
            if generation < t.generation:
                raise StaleGeneration(f"generation {generation} is stale; this pod holds {t.generation}")
            t.generation = generation
            from_state = HOT if t.store is not None else t.state
            blob = await self.retire(t, COLD, reason="requested")
            return {
                "tenant_id": str(tenant_id),
                "state": COLD,
                "previous_state": from_state,
                "generation": generation,
                "context_blob": blob,
            }
        # Not held here (never loaded, or the pod restarted): still leave a fresh blob if the data is on this root.
        ghost = Tenant(tenant_id, generation, state=WARM)
        async with self._lock(tenant_id):
            if tenant_id in self.tenants:
                raise StaleGeneration(f"tenant {tenant_id} was loaded meanwhile; retry")
            snapshot = await self._run(self._snapshot_from_disk, tenant_id)
        blob = "skipped: no data" if snapshot is None else await self._write_blob(ghost, snapshot)
        return {
            "tenant_id": str(tenant_id),
            "state": COLD,
            "previous_state": COLD,
            "generation": generation,
            "context_blob": blob,
        }

    async def fence(self, tenant_id: uuid.UUID, generation: int) -> None:
        """The platform refused ``generation`` as stale: another pod owns the tenant now. Let go, write nothing."""
        t = self.tenants.get(tenant_id)
        if t is not None and t.generation == generation:
            log.warning("tenant %s generation %s is fenced off by the platform; closing it", tenant_id, generation)
            await self.retire(t, COLD, reason="fenced", write_blob=False, report=False)
