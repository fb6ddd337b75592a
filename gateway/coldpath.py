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

Warms are single-flight per tenant (gateway.warming); every waiter ends with an answer or a clear 503/504.
"""

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from django.conf import settings

from gateway import coldanswer
from gateway.blobs import BlobCache, blob_loader
from gateway.coldarchived import ARCHIVED_STATES as ARCHIVED_STATES
from gateway.coldarchived import RESTORE_MEMO_SECONDS as RESTORE_MEMO_SECONDS
from gateway.coldarchived import RESTORE_RETRY_AFTER as RESTORE_RETRY_AFTER
from gateway.coldarchived import ArchivedAnswer
from gateway.coldblob import BlobAnswer
from gateway.coldpodcalls import DELIVERY_ATTEMPTS as DELIVERY_ATTEMPTS
from gateway.coldpodcalls import NOT_HOT_CODES as NOT_HOT_CODES
from gateway.coldpodcalls import WARM_ATTEMPTS_FOR_DELIVERY as WARM_ATTEMPTS_FOR_DELIVERY
from gateway.coldresponse import SSE_HEADERS as SSE_HEADERS
from gateway.coldresponse import refuse
from gateway.coldroutes import RouteKeeper
from gateway.coldwait import WaitForWarm
from gateway.errors import Receive, Send
from gateway.platform import TenantRoute
from gateway.warming import QueueFull, Warmer

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.forwarding import PodRequest

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


def is_chat(scope: dict[str, Any]) -> bool:
    return scope["method"] == "POST" and scope["path"].rstrip("/") == CHAT_PATH


class ColdPath(BlobAnswer, WaitForWarm, ArchivedAnswer):
    """The path decision and the cold-path state; each case lives in its own mixin module (see the imports)."""

    def __init__(self, gateway: "Gateway") -> None:
        self.gw = gateway
        self.platform = gateway.platform
        self.enabled = settings.GATEWAY_COLD_PATH_ENABLED
        self.blobs = BlobCache(max_bytes=settings.GATEWAY_BLOB_CACHE_BYTES, loader=blob_loader(self.platform))
        self.warm_timeout = settings.GATEWAY_WARM_TIMEOUT_SECONDS
        self.warmer = Warmer(
            self._warm_pod,
            queue_size=settings.GATEWAY_WARM_QUEUE_SIZE,
            deadline=self.warm_timeout,
            on_warm=self._mark_warm,
        )
        self.warm_ttl = settings.GATEWAY_ROUTE_TTL_SECONDS
        self.warmed: dict[uuid.UUID, tuple[int, float]] = {}
        self.warm_generations: dict[uuid.UUID, int] = {}
        self._restores: dict[uuid.UUID, float] = {}
        self._restoring: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._delivery_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task[Any]] = set()
        self.route_keeper = RouteKeeper(
            gateway.routes,
            self.blobs.tenants,
            self.platform.tenant_routes,
            interval=max(0.5, settings.GATEWAY_ROUTE_TTL_SECONDS / 2),
        )

    # -- state ---------------------------------------------------------------------------------------------------

    def is_cold(self, route: TenantRoute) -> bool:
        """Not hot in tenant state, and not warmed by this gateway since (the route cache may lag the node)."""
        if route.state == "hot":
            return False
        marked = self.warmed.get(route.tenant_id)
        return not (marked and marked[0] == route.generation and marked[1] > time.monotonic())

    def _mark_warm(self, tenant_id: uuid.UUID, generation: int, _pod: str) -> None:
        generation = self.warm_generations.get(tenant_id, generation)
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
            await self.gw.routes.get(tenant_id)
            await self.blobs.get(tenant_id)
        except Exception:  # best effort: the next request loads them itself
            log.exception("revalidating the cold-path entries of %s failed", tenant_id)

    def reset(self) -> None:
        self.blobs.clear()
        self.warmed.clear()
        self.warm_generations.clear()

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

    async def handle(
        self,
        receive: Receive,
        send: Send,
        route: TenantRoute,
        request: "PodRequest",
        payload: bytes | None,
        started: float,
    ) -> int:
        self.route_keeper.ensure_running()
        request_id = request.request_id
        try:
            body = json.loads(payload) if payload else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if route.state in ARCHIVED_STATES:
            return await self._archived(send, route, request_id, body, started)
        try:
            ticket = self.warmer.enter(route.tenant_id, route.generation)
        except QueueFull as exc:
            return await refuse(send, 503, "warm_queue_full", str(exc), retry_after=1)
        try:
            blob = await self._blob(route)
            message = coldanswer.last_user_message(body)
            if blob is not None and message is not None:
                return await self._answer_from_blob(send, receive, ticket, route, request_id, body, blob, started)
            return await self._wait(send, receive, ticket, route, request, payload, body, started)
        finally:
            if not ticket.left and not ticket.future.done() and not ticket.handed_off:
                ticket.leave()

    async def _blob(self, route: TenantRoute) -> dict[str, Any] | None:
        if route.security_mode == "mobile_only":
            return None  # the platform cannot read a mobile_only tenant's memory: never a blob
        blob = await self.blobs.get(route.tenant_id)
        return blob.doc if blob is not None else None
