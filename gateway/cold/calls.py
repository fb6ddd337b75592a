"""Cold-path calls to the tier pod: warming the tenant there, and delivering a blob-answered message to its store.

Both go through the pod client (gateway.pods.client) to the pod's internal listener with the service credential; the
paths are made here from the tenant's id, never from a client's input.
"""

import asyncio
import json
import uuid
import weakref
from typing import Any

from gateway import metrics
from gateway.cache import TtlCache
from gateway.cold.warming import WarmFailed
from gateway.errors import error_code_of
from gateway.platform import TenantRoute
from gateway.pods.client import NOT_HOT_CODES, NoPods, PodClient, Unreachable
from gateway.pods.h1client import UpstreamError

DELIVERY_ATTEMPTS = 5
MOVE_POLL_SECONDS = 0.05  # how often a held request looks whether the tenant's tier move has ended


class PodCalls:
    def __init__(self, client: PodClient, routes: TtlCache[uuid.UUID, TenantRoute | None], *, timeout: float) -> None:
        self.client = client
        self.routes = routes
        self.timeout = timeout  # of one warm, and of each delivery call
        self.warm_generations: dict[uuid.UUID, int] = {}
        self._delivery_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    def generation_for(self, route: TenantRoute) -> int:
        """The generation the tenant was last warmed at by this gateway: newer than the request's route when a tier
        move bumped it while the request was held."""
        return self.warm_generations.get(route.tenant_id, route.generation)

    async def _settled_route(self, tenant_id: uuid.UUID) -> TenantRoute | None:
        """The tenant's route once no tier move holds it: while a move runs and the tenant is not yet hot on its
        new tier, the request waits here (the warm's deadline bounds the wait), read fresh from the database."""
        route = await self.routes.get(tenant_id)
        while route is not None and route.moving and route.state != "hot":
            await asyncio.sleep(MOVE_POLL_SECONDS)
            self.routes.invalidate(tenant_id)
            route = await self.routes.get(tenant_id)
        return route

    async def warm(self, tenant_id: uuid.UUID, generation: int) -> str:
        """Warm the tenant on its pod (the Warmer's warm): the pod's address, or WarmFailed."""
        route = await self._settled_route(tenant_id)
        if route is None:
            raise WarmFailed(503, "warm_failed", "the tenant is gone")
        generation = route.generation  # the one in force now: a tier move may have fenced the request's
        doc = json.dumps({"generation": generation}).encode()
        target = f"/internal/warm/{tenant_id}".encode()
        try:
            pod, status, body = await self.client.choose_and_call_internal(
                route.tier, route.key, target, doc, timeout=self.timeout
            )
        except NoPods as exc:
            raise WarmFailed(503, "no_pods", str(exc)) from exc
        except Unreachable as exc:
            raise WarmFailed(502, "warm_failed", str(exc)) from exc
        except (UpstreamError, TimeoutError) as exc:
            raise WarmFailed(502, "warm_failed", f"the tier pod failed: {type(exc).__name__}") from exc
        if status == 200:
            if len(self.warm_generations) > 100_000:
                self.warm_generations.clear()
            self.warm_generations[tenant_id] = generation
            return pod
        code = error_code_of(body)
        if code == "stale_generation":
            self.routes.invalidate(tenant_id)
        raise WarmFailed(503, "warm_failed", f"the tier pod refused the warm: {status} {code}", 1)

    async def deliver(
        self, pod: str, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        """Store the user's message and the answer it got on the warm `pod`: None once stored (or already there),
        else why not. Idempotent by request id, so network errors are retried."""
        lock = self._delivery_locks.get(route.tenant_id)
        if lock is None:
            lock = self._delivery_locks[route.tenant_id] = asyncio.Lock()
        generation = self.generation_for(route)
        doc = {"generation": generation, "request_id": request_id, "messages": messages, "reply": answer}
        body = json.dumps(doc).encode()
        target = f"/internal/deliver/{route.tenant_id}".encode()
        async with lock:  # one tenant's deliveries reach its store in arrival order
            for attempt in range(DELIVERY_ATTEMPTS):
                try:
                    status, raw = await self.client.call_internal(
                        pod, target, body, timeout=self.timeout, request_id=request_id
                    )
                except (UpstreamError, TimeoutError):
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue  # idempotent by request id: a retry after a lost answer stores nothing twice
                if status == 200:
                    stored = json.loads(raw).get("delivered", False)
                    metrics.deliveries.labels("stored" if stored else "duplicate").inc()
                    return None
                code = error_code_of(raw)
                if code == "stale_generation":
                    # Fenced since this gateway warmed the pod (a tier move, a reassignment): the message is not
                    # stored anywhere yet, so it follows the tenant to the generation in force (warm, then deliver).
                    self.routes.invalidate(route.tenant_id)
                    self.warm_generations.pop(route.tenant_id, None)
                    return WarmFailed(503, "delivery_unavailable", "the tenant's generation moved on")
                if status == 503 or code in NOT_HOT_CODES:
                    return WarmFailed(503, "delivery_unavailable", f"the pod answered {status}")
                return WarmFailed(502, "delivery_refused", f"the pod refused the message: {code}")
        return WarmFailed(503, "delivery_unavailable", "the pod did not answer")
