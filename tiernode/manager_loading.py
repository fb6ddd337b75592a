"""Loading a tenant into the hot set: single-flight per tenant, with leases handed to the callers it serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from tiernode.manager_errors import Draining, LoadFailed, StaleGeneration, UnknownGeneration
from tiernode.manager_hotset import HotSet
from tiernode.platform_client import PlatformRefused, PlatformUnavailable
from tiernode.tenant_record import CLOSING, COLD, HOT, WARM, LoadJob, Tenant

log = logging.getLogger("tiernode.manager")


class Loading(HotSet):
    """Part of TenantManager: single-flight loads into the hot set, and generation checks."""

    async def ensure_hot(
        self, tenant_id: uuid.UUID, generation: int | None, *, lease: bool = False
    ) -> tuple[Tenant, float, str]:
        """The tenant, hot, with how long its load took and the state it was loaded from.

        With ``lease``, the caller also holds a lease on it (release with ``release``): granted in the same step
        the load completes, so no other load can evict the tenant before its first requests have used it.
        """
        if self.draining:
            raise Draining("the node is draining")
        t = self.tenants.get(tenant_id)
        if t is not None:
            self._check_generation(t, generation)
            if t.state == HOT:
                self._touch(t)
                if lease:
                    self._acquire(t)
                return t, 0.0, HOT
        elif generation is None:
            raise UnknownGeneration(f"no generation for tenant {tenant_id} on this pod; warm it first")
        job = self._loading.get(tenant_id)
        if job is None:
            job = LoadJob()
            job.task = asyncio.create_task(self._load(tenant_id, generation, job), name=f"load-{tenant_id}")
            self._loading[tenant_id] = job
            job.task.add_done_callback(partial(self._load_done, tenant_id, job))
        counted = lease and not job.task.done()
        if counted:
            job.leases += 1
        try:
            loaded, seconds, source = await asyncio.shield(job.task)
        except asyncio.CancelledError:
            if counted:  # the caller went away: give back the lease the load holds (or will hand out) for it
                if not job.task.done():
                    job.leases -= 1
                elif not job.task.cancelled() and job.task.exception() is None:
                    self.release(job.task.result()[0])
            raise
        if lease and not counted:
            if loaded.state != HOT or loaded.store is None:  # evicted since; load again
                return await self.ensure_hot(tenant_id, generation, lease=True)
            self._acquire(loaded)
        try:
            self._check_generation(loaded, generation)
        except StaleGeneration:
            if lease:
                self.release(loaded)
            raise
        return loaded, seconds, source

    def _load_done(self, tenant_id: uuid.UUID, job: LoadJob, task: asyncio.Task[Any]) -> None:
        if self._loading.get(tenant_id) is job:
            del self._loading[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved: every caller got it already

    def _check_generation(self, t: Tenant, generation: int | None) -> None:
        if generation is None or generation == t.generation:
            return
        if generation < t.generation:
            raise StaleGeneration(f"generation {generation} is stale; this pod holds {t.generation}")
        # The platform handed the tenant out again (a newer generation): adopt it, and say so.
        t.generation = generation
        if t.state in (HOT, WARM):
            self._report(t.tenant_id, t.state, generation)

    async def _load(self, tenant_id: uuid.UUID, generation: int | None, job: LoadJob) -> tuple[Tenant, float, str]:
        started = time.perf_counter()
        async with self._lock(tenant_id):
            t = self.tenants.get(tenant_id)
            if t is not None and t.state == HOT:
                self._acquire(t, job.leases)
                job.leases = 0
                return t, 0.0, HOT
            if t is None:
                if generation is None:
                    raise UnknownGeneration(f"no generation for tenant {tenant_id} on this pod; warm it first")
                t = Tenant(tenant_id, generation)
            elif generation is not None and generation > t.generation:
                t.generation = generation
            source = WARM if t.state in (WARM, CLOSING) else COLD
            await self._reserve_slot()
            try:
                if t.store is None:
                    t.store = await self._run(self.open_store, self.cfg.data_root, tenant_id)
                    self.opens += 1
                    t.blob_current = False
            except Exception as exc:
                log.exception("loading tenant %s failed", tenant_id)
                raise LoadFailed(f"could not open tenant {tenant_id}: {exc}") from exc
            finally:
                await self._release_slot()
            t.state = HOT
            self.tenants[tenant_id] = t
            self.hot[tenant_id] = t
            self._touch(t)
            self._acquire(t, job.leases)  # the callers waiting for this load, in the step it completes
            job.leases = 0
            seconds = time.perf_counter() - started
            t.load_seconds, t.requests = seconds, 0
            self.metrics.load_seconds.labels(source=source).observe(seconds)
            self.metrics.transitions.labels(source, HOT).inc()
            self._report(tenant_id, HOT, t.generation)
            if t.key is None and self.key_fetcher is not None and self.object_store is not None:
                self._spawn(self._prefetch_key(t))
            return t, seconds, source

    async def _prefetch_key(self, t: Tenant) -> None:
        assert self.key_fetcher is not None
        try:
            key = await self.key_fetcher(t.tenant_id)
        except (PlatformUnavailable, PlatformRefused) as exc:
            log.info("no data key for %s yet (%s); will ask again when a blob is written", t.tenant_id, exc)
            return
        if t.state in (HOT, CLOSING):
            t.key = key

    @contextlib.asynccontextmanager
    async def lease(self, tenant_id: uuid.UUID, generation: int | None) -> AsyncIterator[Tenant]:
        """A hot tenant whose store stays open until the block exits."""
        t, _, _ = await self.ensure_hot(tenant_id, generation, lease=True)
        try:
            yield t
        finally:
            self.release(t)
