"""Keeps the routes of the tenants whose context blob this gateway holds fresh in the route cache.

A tenant goes cold after being idle for minutes or hours. By then its route-cache entry has expired: entries live
`GATEWAY_ROUTE_TTL_SECONDS`, which bounds how stale a route can get if an invalidation message is lost. So the first
request after the idle spell read the route from the database before anything else (about 1 ms on a busy database,
15-30 ms on an idle one), and the blob answer waited on that read although the blob itself was in memory.

Every half TTL, one batched query re-reads the routes of those tenants (the most recently used, at most `limit`).
It stores each one that was not invalidated while the query ran. An entry is still at most one TTL older than the
database: it is read again, never just extended, so the staleness bound stays the same.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from gateway.cache import TtlCache
from gateway.platform import TenantRoute

log = logging.getLogger(__name__)

LoadMany = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, TenantRoute]]]


class RouteKeeper:
    def __init__(
        self,
        routes: TtlCache[uuid.UUID, TenantRoute | None],
        tenants: Callable[[int], list[uuid.UUID]],
        load_many: LoadMany,
        *,
        interval: float,
        limit: int = 2000,
    ) -> None:
        self.routes = routes
        self.tenants = tenants
        self.load_many = load_many
        self.interval = interval
        self.limit = limit
        self.task: asyncio.Task[None] | None = None

    async def refresh(self) -> int:
        """Re-read the routes once; how many were stored."""
        ids = self.tenants(self.limit)
        if not ids:
            return 0
        generations = {tenant_id: self.routes.generation(tenant_id) for tenant_id in ids}
        loaded = await self.load_many(ids)
        # A tenant the query did not find is left to the normal path, which caches its absence.
        return sum(self.routes.put(tid, route, generation=generations[tid]) for tid, route in loaded.items())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # the database is away: entries expire as usual, requests read them themselves
                log.exception("refreshing the routes of tenants with a context blob failed")

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
