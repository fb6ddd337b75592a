"""The tenant manager's state and the plumbing its parts share (per-tenant locks, disk threads, reports, tasks)."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tiernode.blob import ObjectStore
from tiernode.config import NodeConfig
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import StateReporter
from tiernode.store import TenantStore
from tiernode.tenant_record import WARM, LoadJob, Tenant

T = TypeVar("T")
KeyFetcher = Callable[[uuid.UUID], Awaitable[tuple[str, bytes]]]


class ManagerState:
    """Base of TenantManager: every attribute the manager's parts share, set once here."""

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
        self.drain_cut = asyncio.Event()  # set when a shutdown passes its deadline: no more context blobs
        self._reserved = 0  # hot-set slots held by loads in progress
        self._room = asyncio.Condition()
        self._loading: dict[uuid.UUID, LoadJob] = {}
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task[Any]] = set()
        self._disk = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tenant-disk")
        metrics.bind_counts(lambda: self.hot_count, lambda: self.warm_count, self.max_hot)
        metrics.bind_tenants(lambda: self.hot.values())

    # -- counts ------------------------------------------------------------------------------------------------

    @property
    def hot_count(self) -> int:
        return len(self.hot)

    @property
    def warm_count(self) -> int:
        return sum(1 for t in self.tenants.values() if t.state == WARM)

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _lock(self, tenant_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

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
