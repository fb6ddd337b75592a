"""Loading a tenant into the hot set: single-flight per tenant, with leases handed to the callers it serves, and the
generation checks every load and lease goes through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tiernode.manager_blobs import BlobWriter
from tiernode.manager_errors import Draining, LoadFailed, StaleGeneration, UnknownGeneration
from tiernode.manager_eviction import Evictor, Report
from tiernode.manager_hotset import HotSet
from tiernode.manager_registry import TenantRegistry
from tiernode.manager_tasks import Background, DiskThreads
from tiernode.metrics import NodeMetrics
from tiernode.store import TenantStore
from tiernode.tenant_record import CLOSING, COLD, HOT, WARM, LoadJob, Tenant

log = logging.getLogger("tiernode.manager")

Loaded = tuple[Tenant, float, str]  # the hot tenant, how long its load took, the state it was loaded from


class Loader:
    def __init__(
        self,
        *,
        registry: TenantRegistry,
        hot: HotSet,
        evictor: Evictor,
        blobs: BlobWriter,
        background: Background,
        disk: DiskThreads,
        metrics: NodeMetrics,
        report: Report,
        open_store: Callable[..., TenantStore],
        data_root: Path,
    ) -> None:
        self._registry = registry
        self._hot = hot
        self._evictor = evictor
        self._blobs = blobs
        self._background = background
        self._disk = disk
        self._metrics = metrics
        self._report = report
        self._open_store = open_store
        self._data_root = data_root
        self._jobs: dict[uuid.UUID, LoadJob] = {}  # the load in flight of each tenant
        self.opens = 0  # stores opened (diagnostics and tests)

    async def ensure_hot(self, tenant_id: uuid.UUID, generation: int | None, *, lease: bool = False) -> Loaded:
        """The tenant, hot, with how long its load took and the state it was loaded from.

        With ``lease``, the caller also holds a lease on it (release with ``HotSet.release``): granted in the same
        step the load completes, so no other load can evict the tenant before its first requests have used it.
        """
        if self._registry.draining:
            raise Draining("the node is draining")
        t = self._registry.get(tenant_id)
        if t is not None:
            self.check_generation(t, generation)
            if t.state == HOT:
                self._hot.touch(t)
                if lease:
                    self._hot.acquire(t)
                return t, 0.0, HOT
        elif generation is None:
            raise UnknownGeneration(f"no generation for tenant {tenant_id} on this pod; warm it first")
        job = self._jobs.get(tenant_id)
        if job is None:
            job = LoadJob()
            job.task = self._background.spawn(self._load(tenant_id, generation, job), name=f"load-{tenant_id}")
            self._jobs[tenant_id] = job
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
                    self._hot.release(job.task.result()[0])
            raise
        if lease and not counted:
            if loaded.state != HOT or loaded.store is None:  # evicted since; load again
                return await self.ensure_hot(tenant_id, generation, lease=True)
            self._hot.acquire(loaded)
        try:
            self.check_generation(loaded, generation)
        except StaleGeneration:
            if lease:
                self._hot.release(loaded)
            raise
        return loaded, seconds, source

    async def wait_for(self, tenant_id: uuid.UUID) -> None:
        """Return once the tenant's load in flight, if any, is over (whether it succeeded or not)."""
        job = self._jobs.get(tenant_id)
        if job is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(job.task)

    def check_generation(self, t: Tenant, generation: int | None) -> None:
        if generation is None or generation == t.generation:
            return
        if generation < t.generation:
            raise StaleGeneration(f"generation {generation} is stale; this pod holds {t.generation}")
        # The platform handed the tenant out again (a newer generation): adopt it, and say so.
        t.generation = generation
        if t.state in (HOT, WARM):
            self._report(t.tenant_id, t.state, generation)

    def _load_done(self, tenant_id: uuid.UUID, job: LoadJob, task: asyncio.Task[Any]) -> None:
        if self._jobs.get(tenant_id) is job:
            del self._jobs[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved: every caller got it already

    async def _load(self, tenant_id: uuid.UUID, generation: int | None, job: LoadJob) -> Loaded:
        started = time.perf_counter()
        async with self._registry.lock(tenant_id):
            t = self._registry.get(tenant_id)
            if t is not None and t.state == HOT:
                self._hot.acquire(t, job.leases)
                job.leases = 0
                return t, 0.0, HOT
            if t is None:
                if generation is None:
                    raise UnknownGeneration(f"no generation for tenant {tenant_id} on this pod; warm it first")
                t = Tenant(tenant_id, generation)
            elif generation is not None and generation > t.generation:
                t.generation = generation
            source = WARM if t.state in (WARM, CLOSING) else COLD
            await self._hot.reserve_slot(self._push_out)
            try:
                if t.store is None:
                    t.store = await self._disk.run(self._open_store, self._data_root, tenant_id)
                    self.opens += 1
                    t.blob_current = False
            except Exception as exc:
                log.exception("loading tenant %s failed", tenant_id)
                raise LoadFailed(f"could not open tenant {tenant_id}: {exc}") from exc
            finally:
                await self._hot.release_slot()
            t.state = HOT
            self._registry.add(t)
            self._hot.add(t)
            self._hot.acquire(t, job.leases)  # the callers waiting for this load, in the step it completes
            job.leases = 0
            seconds = time.perf_counter() - started
            t.load_seconds, t.requests = seconds, 0
            self._metrics.load_seconds.labels(source=source).observe(seconds)
            self._metrics.transitions.labels(source, HOT).inc()
            self._report(tenant_id, HOT, t.generation)
            if t.key is None and self._blobs.wants_keys:
                self._background.spawn(self._blobs.fetch_key_ahead(t))
            return t, seconds, source

    def _push_out(self, victim: Tenant) -> None:
        """The hot set is full: its least recently used tenant closes in the background, to make room."""
        self._background.spawn(self._evictor.push_out(victim, reason="lru"))
