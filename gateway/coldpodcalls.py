"""Cold-path calls to the tier pod: warming the tenant there, and delivering a blob-answered message to its store.

Both go to the pod's internal listener (`Discovery.internal_address`) with the service credential, through the
same connection pool as the proxy path; the paths are made here from the tenant's id, never from a client's input.
"""

import asyncio
import json
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from gateway import metrics
from gateway.errors import error_code_of
from gateway.h1client import UpstreamConnectError, UpstreamError
from gateway.platform import TenantRoute
from gateway.warming import QueueFull, Ticket, Warmer, WarmFailed

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("gateway.coldpath")

NOT_HOT_CODES = frozenset({"unknown_generation", "load_failed"})
DELIVERY_ATTEMPTS = 5
WARM_ATTEMPTS_FOR_DELIVERY = 3
MOVE_POLL_SECONDS = 0.05  # how often a held request looks whether the tenant's tier move has ended


class PodCalls:
    """Mixin of ColdPath (which sets these attributes)."""

    gw: "Gateway"
    warmer: Warmer
    warm_timeout: float
    _delivery_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock]
    warm_generations: dict[uuid.UUID, int]

    def generation_for(self, route: TenantRoute) -> int:
        """The generation the tenant was last warmed at by this gateway: newer than the request's route when a tier
        move bumped it while the request was held."""
        return self.warm_generations.get(route.tenant_id, route.generation)

    async def _settled_route(self, tenant_id: uuid.UUID) -> TenantRoute | None:
        """The tenant's route once no tier move holds it: while a move runs and the tenant is not yet hot on its
        new tier, the request waits here (the warm's deadline bounds the wait), read fresh from the database."""
        route = await self.gw.routes.get(tenant_id)
        while route is not None and route.moving and route.state != "hot":
            await asyncio.sleep(MOVE_POLL_SECONDS)
            self.gw.routes.invalidate(tenant_id)
            route = await self.gw.routes.get(tenant_id)
        return route

    def _service_headers(self, request_id: str = "") -> list[tuple[bytes, bytes]]:
        headers = [(b"authorization", self.gw.service_authorization), (b"content-type", b"application/json")]
        return [*headers, (b"x-request-id", request_id.encode())] if request_id else headers

    async def _warm_pod(self, tenant_id: uuid.UUID, generation: int) -> str:
        route = await self._settled_route(tenant_id)
        if route is None:
            raise WarmFailed(503, "warm_failed", "the tenant is gone")
        generation = route.generation  # the one in force now: a tier move may have fenced the request's
        pods = self.gw.discovery.pods(route.tier)
        doc = json.dumps({"generation": generation}).encode()
        for _attempt in range(3):
            pod, _rank = pods.choose(str(tenant_id))
            if pod is None:
                raise WarmFailed(503, "no_pods", f"no pods for tier {route.tier}")
            try:
                status, body = await self.gw.pool.call(
                    b"POST",
                    self.gw.discovery.internal_address(pod),
                    f"/internal/warm/{tenant_id}".encode(),
                    self._service_headers(),
                    doc,
                    timeout=self.warm_timeout,
                )
            except UpstreamConnectError:
                pods.eject(pod)
                continue
            except (UpstreamError, TimeoutError) as exc:
                raise WarmFailed(502, "warm_failed", f"the tier pod failed: {type(exc).__name__}") from exc
            if status == 200:
                if len(self.warm_generations) > 100_000:
                    self.warm_generations.clear()
                self.warm_generations[tenant_id] = generation
                return pod
            code = error_code_of(body)
            if code == "stale_generation":
                self.gw.routes.invalidate(tenant_id)
            raise WarmFailed(503, "warm_failed", f"the tier pod refused the warm: {status} {code}", 1)
        raise WarmFailed(502, "warm_failed", "no tier pod accepted the connection")

    async def _deliver(
        self, ticket: Ticket, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        """Store the message once the pod is warm: None on success, else why not (after retries)."""
        error: WarmFailed | None = None
        for warm_attempt in range(WARM_ATTEMPTS_FOR_DELIVERY):
            try:
                if warm_attempt:
                    await asyncio.sleep(0.2 * warm_attempt)
                    ticket = self.warmer.enter(route.tenant_id, route.generation)
                pod = await ticket.ready()
            except QueueFull as exc:
                error = WarmFailed(503, "warm_queue_full", str(exc))
                continue
            except WarmFailed as exc:
                error = exc
                continue
            error = await self._post_delivery(pod, route, request_id, messages, answer)
            if error is None or error.code != "delivery_unavailable":
                break
        if error is not None:
            metrics.deliveries.labels("failed").inc()
            log.warning(
                "message %s for %s answered from the blob was not stored: %s", request_id, route.tenant_id, error
            )
        return error

    async def _post_delivery(
        self, pod: str, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        lock = self._delivery_locks.get(route.tenant_id)
        if lock is None:
            lock = self._delivery_locks[route.tenant_id] = asyncio.Lock()
        generation = self.generation_for(route)
        doc = {"generation": generation, "request_id": request_id, "messages": messages, "reply": answer}
        body = json.dumps(doc).encode()
        address = self.gw.discovery.internal_address(pod)
        target = f"/internal/deliver/{route.tenant_id}".encode()
        async with lock:  # one tenant's deliveries reach its store in arrival order
            for attempt in range(DELIVERY_ATTEMPTS):
                try:
                    status, raw = await self.gw.pool.call(
                        b"POST", address, target, self._service_headers(request_id), body, timeout=self.warm_timeout
                    )
                except (UpstreamError, TimeoutError):
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue  # idempotent by request id: a retry after a lost answer stores nothing twice
                if status == 200:
                    stored = json.loads(raw).get("delivered", False)
                    metrics.deliveries.labels("stored" if stored else "duplicate").inc()
                    return None
                if status == 503 or error_code_of(raw) in NOT_HOT_CODES:
                    return WarmFailed(503, "delivery_unavailable", f"the pod answered {status}")
                return WarmFailed(502, "delivery_refused", f"the pod refused the message: {error_code_of(raw)}")
        return WarmFailed(503, "delivery_unavailable", "the pod did not answer")
