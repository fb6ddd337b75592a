"""The gateway's cold path: a chat request for a tenant that is not hot.

- **blob**: the tenant has a readable context blob (and is not `mobile_only`): stream at once a warming event and an
  answer built from the blob (`X-Percolate-Cold-Start: blob`), while the pod warms in the background; once warm,
  the user's message and the answer it got are delivered to the tenant's store through the node's idempotent
  `POST /internal/deliver/{id}` (keyed by the request id: a retry never duplicates). The stream ends with a
  `percolate.status` SSE comment saying the message was stored (or an error in OpenAI's shape saying it was not),
  then `[DONE]`.
- **wait**: no blob, or `mobile_only`: stream the warming event (streaming requests), wait in the tenant's bounded
  warming queue, then proxy the request to the warm pod (`X-Percolate-Cold-Start: wait`).
- **archived**: archived or restoring tenants: one restore is requested (single-flight per gateway, and the
  platform refuses a second concurrent job); the request is answered from the blob if there is one, marked
  `"delivered": false` (the workspace cannot take the message until restored), else 503 with `Retry-After`.

Warms are single-flight per tenant (gateway.cold.warming); every waiter ends with an answer or a clear 503/504.

`ColdPath` holds the cold-path state and composes the cases, each an object with explicit collaborators: `BlobAnswer`
(gateway.cold.blob), `WaitForWarm` (gateway.cold.wait), `ArchivedAnswer` (gateway.cold.archived), all calling pods
through `PodCalls` (gateway.cold.calls) on the gateway's one pod client. Whether a request goes cold at all is
decided in gateway.dispatch.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from gateway.cache import TtlCache
from gateway.cold import answer as coldanswer
from gateway.cold.archived import ARCHIVED_STATES, ArchivedAnswer
from gateway.cold.blob import BlobAnswer
from gateway.cold.blobs import BlobCache, blob_loader
from gateway.cold.calls import PodCalls
from gateway.cold.response import refuse
from gateway.cold.routes import RouteKeeper
from gateway.cold.wait import WaitForWarm
from gateway.cold.warming import QueueFull, Warmer
from gateway.errors import Receive, Send
from gateway.platform import Platform, TenantRoute
from gateway.pods.client import PodClient
from gateway.request import GatewayRequest

log = logging.getLogger("gateway.cold")


class ColdPath:
    def __init__(
        self,
        *,
        client: PodClient,
        routes: TtlCache[uuid.UUID, TenantRoute | None],
        platform: Platform,
        enabled: bool,
        blob_cache_bytes: int,
        warm_timeout: float,
        warm_queue_size: int,
        route_ttl: float,
    ) -> None:
        self.enabled = enabled
        self.routes = routes
        self.blobs = BlobCache(max_bytes=blob_cache_bytes, loader=blob_loader(platform))
        self.calls = PodCalls(client, routes, timeout=warm_timeout)
        self.warmer = Warmer(
            self.calls.warm, queue_size=warm_queue_size, deadline=warm_timeout, on_warm=self._mark_warm
        )
        self.warm_ttl = route_ttl
        self.warmed: dict[uuid.UUID, tuple[int, float]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.blob = BlobAnswer(self.calls, self.warmer, self._spawn)
        self.wait = WaitForWarm(client, self.calls)
        self.archived = ArchivedAnswer(platform, self._spawn)
        self.route_keeper = RouteKeeper(
            routes, self.blobs.tenants, platform.tenant_routes, interval=max(0.5, route_ttl / 2)
        )

    # -- state ---------------------------------------------------------------------------------------------------

    def is_cold(self, route: TenantRoute) -> bool:
        """Not hot in tenant state, and not warmed by this gateway since (the route cache may lag the node)."""
        if route.state == "hot":
            return False
        marked = self.warmed.get(route.tenant_id)
        return not (marked and marked[0] == route.generation and marked[1] > time.monotonic())

    def _mark_warm(self, tenant_id: uuid.UUID, generation: int, _pod: str) -> None:
        generation = self.calls.warm_generations.get(tenant_id, generation)
        self.warmed[tenant_id] = (generation, time.monotonic() + self.warm_ttl)
        if len(self.warmed) > 100_000:
            self.warmed.clear()

    def forget_warm(self, tenant_id: uuid.UUID) -> None:
        self.warmed.pop(tenant_id, None)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        """The tenant's state changed (`tenant:<id>`): its blob may be new, its pod may have let it go.

        A tenant whose blob this gateway holds is revalidated at once in the background (fresh blob and route), so
        its next cold request finds them in memory instead of paying the fetch; others are only dropped.
        """
        had = tenant_id in self.blobs
        self.blobs.invalidate(tenant_id)
        self.warmed.pop(tenant_id, None)
        if had:
            self._spawn(self._revalidate(tenant_id))

    async def _revalidate(self, tenant_id: uuid.UUID) -> None:
        try:
            await self.routes.get(tenant_id)
            await self.blobs.get(tenant_id)
        except Exception:  # best effort: the next request loads them itself
            log.exception("revalidating the cold-path entries of %s failed", tenant_id)

    def reset(self) -> None:
        self.blobs.clear()
        self.warmed.clear()
        self.calls.warm_generations.clear()

    async def close(self) -> None:
        self.route_keeper.stop()
        await self.warmer.close()
        for task in list(self._background):
            task.cancel()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- entry point ---------------------------------------------------------------------------------------------

    async def handle(self, request: GatewayRequest, receive: Receive, send: Send) -> int:
        """Answer a chat request whose tenant is not hot: archived, blob or wait (see the module's docstring)."""
        self.route_keeper.ensure_running()
        route = request.route
        if route.state in ARCHIVED_STATES:
            self.archived.request_restore(route.tenant_id)
            return await self.archived.answer(request, await self._blob(route), send)
        try:
            ticket = self.warmer.enter(route.tenant_id, route.generation)
        except QueueFull as exc:
            return await refuse(send, 503, "warm_queue_full", str(exc), retry_after=1)
        try:
            blob = await self._blob(route)
            if blob is not None and coldanswer.last_user_message(request.document) is not None:
                return await self.blob.answer(request, ticket, blob, receive, send)
            return await self.wait.wait(request, ticket, receive, send)
        finally:
            if not ticket.left and not ticket.future.done() and not ticket.handed_off:
                ticket.leave()

    async def _blob(self, route: TenantRoute) -> dict[str, Any] | None:
        if route.security_mode == "mobile_only":
            return None  # the platform cannot read a mobile_only tenant's memory: never a blob
        blob = await self.blobs.get(route.tenant_id)
        return blob.doc if blob is not None else None
