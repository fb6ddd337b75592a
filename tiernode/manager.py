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

``TenantManager`` composes the parts, each an object given its collaborators (read in this order):

- ``TenantRegistry`` (``manager_registry``): the tenants held, their locks, the draining flag;
- ``HotSet`` (``manager_hotset``): the LRU, its slots and the leases;
- ``Background`` and ``DiskThreads`` (``manager_tasks``): where the work runs;
- ``BlobWriter`` (``manager_blobs``): snapshots, data keys, sealed context blobs;
- ``Evictor`` (``manager_eviction``): every move out of hot, ``/internal/evict``, fencing;
- ``Loader`` (``manager_loading``): single-flight loads, leases, generation checks;
- ``IdleTimer`` (``manager_idle``): the tier's idle timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from tiernode.blob import ObjectStore
from tiernode.config import NodeConfig
from tiernode.manager_blobs import BlobWriter, KeyFetcher
from tiernode.manager_errors import ManagerError as ManagerError
from tiernode.manager_eviction import Evictor
from tiernode.manager_hotset import HotSet
from tiernode.manager_idle import IdleTimer
from tiernode.manager_loading import Loaded, Loader
from tiernode.manager_registry import TenantRegistry
from tiernode.manager_tasks import Background, DiskThreads
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import StateReporter
from tiernode.store import TenantStore
from tiernode.tenant_record import COLD, Tenant

log = logging.getLogger(__name__)


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
        report = reporter.report if reporter is not None else _no_report
        self._registry = TenantRegistry(clock)
        self._hot = HotSet(cfg.max_hot_tenants, clock)
        self._background = Background()
        self._disk = DiskThreads()
        self._blobs = BlobWriter(
            cfg,
            metrics=metrics,
            disk=self._disk,
            open_store=open_store,
            object_store=object_store,
            key_fetcher=key_fetcher,
        )
        self._evictor = Evictor(
            registry=self._registry,
            hot=self._hot,
            blobs=self._blobs,
            disk=self._disk,
            metrics=metrics,
            report=report,
            clock=clock,
        )
        self._loader = Loader(
            registry=self._registry,
            hot=self._hot,
            evictor=self._evictor,
            blobs=self._blobs,
            background=self._background,
            disk=self._disk,
            metrics=metrics,
            report=report,
            open_store=open_store,
            data_root=cfg.data_root,
        )
        self._idle = IdleTimer(cfg, registry=self._registry, hot=self._hot, evictor=self._evictor, clock=clock)
        metrics.bind_counts(lambda: self.hot_count, lambda: self.warm_count, self.max_hot)
        metrics.bind_tenants(self._hot.tenants)

    # -- what the node's endpoints use ---------------------------------------------------------------------------

    @property
    def max_hot(self) -> int:
        return self._hot.max_hot

    @property
    def hot_count(self) -> int:
        return len(self._hot)

    @property
    def warm_count(self) -> int:
        return self._registry.warm_count

    @property
    def draining(self) -> bool:
        return self._registry.draining

    def describe(self) -> list[dict[str, Any]]:
        """One entry per tenant held (``/internal/tenants``)."""
        return self._registry.describe()

    async def ensure_hot(self, tenant_id: uuid.UUID, generation: int | None) -> Loaded:
        """``/internal/warm``: the tenant hot, how long its load took and the state it was loaded from."""
        return await self._loader.ensure_hot(tenant_id, generation)

    @contextlib.asynccontextmanager
    async def lease(self, tenant_id: uuid.UUID, generation: int | None) -> AsyncIterator[Tenant]:
        """A hot tenant whose store stays open until the block exits (a chat, a delivery)."""
        t, _, _ = await self._loader.ensure_hot(tenant_id, generation, lease=True)
        try:
            yield t
        finally:
            self._hot.release(t)

    async def evict(self, tenant_id: uuid.UUID, generation: int) -> dict[str, Any]:
        """``/internal/evict``: once a load in flight is over, flush, close and blob the tenant; cold after."""
        await self._loader.wait_for(tenant_id)
        return await self._evictor.evict(tenant_id, generation)

    async def fence(self, tenant_id: uuid.UUID, generation: int) -> None:
        """The platform refused ``generation`` as stale (another pod owns the tenant): let go, write nothing."""
        await self._evictor.fence(tenant_id, generation)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Apply the tier's idle timers once (hot → warm, warm → cold) against the injected clock."""
        await self._idle.sweep()

    async def run_sweeper(self) -> None:
        await self._idle.run()

    async def settle(self) -> None:
        """Wait for background loads, closes and key fetches (tests, shutdown)."""
        await self._background.settle()

    async def shutdown(self, deadline: float | None = None) -> None:
        """Drain: refuse new loads, then flush, close and blob every tenant, and report them cold. Past ``deadline``
        seconds the context blobs still being written are abandoned (flush, close and report still happen)."""
        self._registry.draining = True
        await self.settle()
        retire = self._evictor.retire
        retiring = [asyncio.ensure_future(retire(t, COLD, reason="shutdown")) for t in self._registry]
        if retiring:
            _, late = await asyncio.wait(retiring, timeout=deadline)
            if late:
                log.warning(
                    "drain deadline of %s s passed: %d tenants go cold without a context blob", deadline, len(late)
                )
                self._blobs.cut()
            await asyncio.gather(*retiring, return_exceptions=True)
        await self.settle()
        self._disk.shutdown()

    # -- read-only views (diagnostics and tests) -------------------------------------------------------------------

    @property
    def tenants(self) -> Mapping[uuid.UUID, Tenant]:
        """The tenants held (hot, closing or warm), by id."""
        return self._registry.view

    def hot_order(self) -> list[uuid.UUID]:
        """The hot tenants, least recently used first (the next to go when the set is full)."""
        return [t.tenant_id for t in self._hot.tenants()]

    @property
    def slots_in_use(self) -> int:
        """Hot tenants plus loads in progress: never above ``max_hot``."""
        return self._hot.slots_in_use

    @property
    def opens(self) -> int:
        """Stores opened since the node started."""
        return self._loader.opens


def _no_report(tenant_id: uuid.UUID, state: str, generation: int) -> None:
    """No platform configured: nothing to report to."""
