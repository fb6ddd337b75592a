"""The tenant manager: which tenants this pod holds, in which state, and the moves between states.

States on the pod (the platform's names):

- **hot**: the tenant's RocksDB is open and it is in the hot set, an LRU bounded by ``MAX_HOT_TENANTS``.
- **warm**: flushed and closed (its context blob written), still assigned to this pod with its generation, so it
  reloads without the platform; costs no memory beyond a small record.
- **cold**: the pod has let go of it (the record is gone).

Moves: a load (cold/warm → hot) on ``/internal/warm`` or a chat; the LRU bound and the hot→warm idle timer (warm →
hot again on use); the warm→cold idle timer; ``/internal/evict`` (→ cold); shutdown (→ cold). Every move out of hot
flushes and closes the store and writes a fresh sealed context blob; every move is reported to the platform in the
background.

Concurrency: loading is single-flight (one task per tenant, shared by every caller); each tenant's open/close moves
are serialised by a per-tenant lock; requests hold a lease on a hot tenant and its store is closed only once the
leases drain, so a chat never writes to a closed store. The hot set never exceeds its bound: a load reserves its
slot first, evicting the least recently used tenant (or waiting, if every slot is a load in progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from tiernode.blob import ObjectStore, build_context, context_key, seal_context
from tiernode.config import NodeConfig
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import PlatformRefused, PlatformUnavailable, StateReporter
from tiernode.store import TenantStore, tenant_path

log = logging.getLogger("tiernode.manager")

HOT, WARM, COLD, CLOSING = "hot", "warm", "cold", "closing"
T = TypeVar("T")
KeyFetcher = Callable[[uuid.UUID], Awaitable[tuple[str, bytes]]]


class ManagerError(Exception):
    status = 409
    code = "conflict"


class StaleGeneration(ManagerError):
    code = "stale_generation"


class UnknownGeneration(ManagerError):
    code = "unknown_generation"


class Draining(ManagerError):
    status = 503
    code = "draining"


class LoadFailed(ManagerError):
    """The store would not open (e.g. another process still holds its lock during a move): worth a retry."""

    status = 503
    code = "load_failed"


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


class _LoadJob:
    """One single-flight load: its task, and how many waiting callers it hands a lease to when it completes."""

    task: asyncio.Task[tuple[Tenant, float, str]]

    def __init__(self) -> None:
        self.leases = 0


class TenantManager:
    def __init__(
        self,
        cfg: NodeConfig,
        *,
        metrics: NodeMetrics,
        reporter: StateReporter | None = None,
        object_store: ObjectStore | None = None,
        key_fetcher: KeyFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_store: Callable[..., TenantStore] = TenantStore,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.reporter = reporter
        self.object_store = object_store
        self.key_fetcher = key_fetcher
        self.clock = clock
        self.open_store = open_store
        self.max_hot = cfg.max_hot_tenants
        self.tenants: dict[uuid.UUID, Tenant] = {}
        self.hot: OrderedDict[uuid.UUID, Tenant] = OrderedDict()  # least recently used first
        self.opens = 0  # stores opened (for tests and diagnostics)
        self.draining = False
        self._reserved = 0  # hot-set slots held by loads in progress
        self._room = asyncio.Condition()
        self._loading: dict[uuid.UUID, _LoadJob] = {}
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task[Any]] = set()
        self._disk = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tenant-disk")
        metrics.bind_counts(lambda: self.hot_count, lambda: self.warm_count, self.max_hot)

    # -- counts and listing ------------------------------------------------------------------------------------

    @property
    def hot_count(self) -> int:
        return len(self.hot)

    @property
    def warm_count(self) -> int:
        return sum(1 for t in self.tenants.values() if t.state == WARM)

    def describe(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [t.describe(now) for t in self.tenants.values()]

    # -- loading -----------------------------------------------------------------------------------------------

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
            job = _LoadJob()
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

    def _load_done(self, tenant_id: uuid.UUID, job: _LoadJob, task: asyncio.Task[Any]) -> None:
        if self._loading.get(tenant_id) is job:
            del self._loading[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved: every caller got it already

    def _acquire(self, t: Tenant, n: int = 1) -> None:
        t.leases += n
        if t.leases:
            t.drained.clear()

    def release(self, t: Tenant) -> None:
        t.leases -= 1
        self._touch(t)
        if t.leases == 0:
            t.drained.set()

    def _check_generation(self, t: Tenant, generation: int | None) -> None:
        if generation is None or generation == t.generation:
            return
        if generation < t.generation:
            raise StaleGeneration(f"generation {generation} is stale; this pod holds {t.generation}")
        # The platform handed the tenant out again (a newer generation): adopt it, and say so.
        t.generation = generation
        if t.state in (HOT, WARM):
            self._report(t.tenant_id, t.state, generation)

    def _lock(self, tenant_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

    async def _load(self, tenant_id: uuid.UUID, generation: int | None, job: _LoadJob) -> tuple[Tenant, float, str]:
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
            self.metrics.load_seconds.labels(source=source).observe(seconds)
            self.metrics.transitions.labels(source, HOT).inc()
            self._report(tenant_id, HOT, t.generation)
            if t.key is None and self.key_fetcher is not None and self.object_store is not None:
                self._spawn(self._prefetch_key(t))
            return t, seconds, source

    async def _reserve_slot(self) -> None:
        async with self._room:
            while len(self.hot) + self._reserved >= self.max_hot:
                if self.hot:
                    # Least recently used, preferring one no request is using right now.
                    victim = next((t for t in self.hot.values() if t.leases == 0), next(iter(self.hot.values())))
                    del self.hot[victim.tenant_id]
                    victim.state = CLOSING
                    self._spawn(self.retire(victim, WARM, reason="lru", only_if_closing=True))
                else:
                    await self._room.wait()
            self._reserved += 1

    async def _release_slot(self) -> None:
        async with self._room:
            self._reserved -= 1
            self._room.notify_all()

    def _touch(self, t: Tenant) -> None:
        t.last_used = self.clock()
        if t.tenant_id in self.hot:
            self.hot.move_to_end(t.tenant_id)

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

    # -- leaving the hot set -----------------------------------------------------------------------------------

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
                blob = await self._write_blob(t, snapshot)
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

    # -- idle timers -------------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Apply the tier's idle timers once (hot → warm, warm → cold) against the injected clock."""
        now = self.clock()
        jobs = []
        if self.cfg.hot_to_warm_seconds is not None:
            for t in list(self.hot.values()):
                if t.leases == 0 and now - t.last_used >= self.cfg.hot_to_warm_seconds:
                    del self.hot[t.tenant_id]
                    t.state = CLOSING
                    jobs.append(self.retire(t, WARM, reason="idle", only_if_closing=True))
        if self.cfg.warm_to_cold_seconds is not None:
            for t in list(self.tenants.values()):
                if t.state == WARM and now - t.state_since >= self.cfg.warm_to_cold_seconds:
                    jobs.append(self.retire(t, COLD, reason="idle"))
        if jobs:
            await asyncio.gather(*jobs)

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("idle sweep failed")

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _report(self, tenant_id: uuid.UUID, state: str, generation: int) -> None:
        if self.reporter is not None:
            self.reporter.report(tenant_id, state, generation)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for background closes and key fetches (tests, shutdown)."""
        while self._background or self._loading:
            await asyncio.gather(*self._background, *(j.task for j in self._loading.values()), return_exceptions=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def shutdown(self) -> None:
        """Drain: refuse new loads, then flush, close and blob every tenant, and report them cold."""
        self.draining = True
        await self.settle()
        await asyncio.gather(
            *(self.retire(t, COLD, reason="shutdown") for t in list(self.tenants.values())), return_exceptions=True
        )
        await self.settle()
        self._disk.shutdown(wait=True)
