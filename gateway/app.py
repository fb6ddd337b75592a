"""The gateway ASGI app, and the one place its parts are built and wired (a composition root).

Raw ASGI on the hot path: no Django middleware, no synchronous ORM call. Tenant routes and device keys come from
in-process TTL caches filled off the event loop on a miss (through gateway.platform) and invalidated through Redis
pub/sub.

A request, read top to bottom (docs/decisions.md, "Structure: the gateway's layers"): the allow-list
(gateway.surface) → the gateway's own endpoints (gateway.own) or admission (gateway.limits.admission) → the head's
framing (gateway.framing) → the caller (gateway.auth) → its tenant's rate and stream limits (gateway.limits) → one
immutable `GatewayRequest` (gateway.request) → `Dispatch` (gateway.dispatch), which sends it hot (gateway.proxy, to
the pod through the one pod client, gateway.pods) or cold (gateway.cold).
"""

import asyncio
import gc
import logging
import re
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from core.pod_credentials import bearer, proxy_credential
from gateway import metrics, surface
from gateway.auth.callers import Authenticator
from gateway.auth.tokens import TokenRejected, platform_private_key
from gateway.body import BodyTimeout, BodyTooLarge, RequestBody, read_small
from gateway.cache import TtlCache
from gateway.cold.path import ColdPath
from gateway.dispatch import Dispatch
from gateway.errors import ClientGone, Receive, Send, send_error, send_json
from gateway.framing import FramingError, Limits, check_request
from gateway.headers import header_value
from gateway.invalidation import listen_for_invalidations
from gateway.limits.admission import Admission, Admitted, install, refuse
from gateway.limits.ratelimit import ALLOWED, Bucket, RateLimiter, StreamSlots
from gateway.models import models_body
from gateway.own import OwnEndpoints
from gateway.platform import DeviceKey, Platform, TenantRoute
from gateway.pods.client import PodClient, Timeouts
from gateway.pods.discovery import Discovery
from gateway.pods.h1client import HeadLimits
from gateway.pods.h1pool import H1Pool
from gateway.proxy.hot import HotPath, body_error
from gateway.proxy.websocket import proxy_websocket
from gateway.request import GatewayRequest, is_chat
from gateway.requestids import RequestIds

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
HTTP1 = ("1.0", "1.1")


def settle_garbage_collector(young_threshold: int) -> None:
    """Everything loaded at start-up (Django, the app) is moved out of the collector's sight (gc.freeze), and the
    young generation is collected every `young_threshold` allocations instead of every 700."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


class Gateway:
    """The ASGI app: builds the gateway's parts once, runs their lifecycle, and takes each request down the layers."""

    def __init__(self, platform: Platform | None = None) -> None:
        self.platform = platform or Platform()  # all the gateway reads and writes of the platform
        self.limits = Limits(
            settings.GATEWAY_MAX_HEADER_COUNT, settings.GATEWAY_MAX_HEADER_BYTES, settings.GATEWAY_MAX_BODY_BYTES
        )
        self.timeouts = Timeouts(
            settings.GATEWAY_CONNECT_TIMEOUT_SECONDS,
            settings.GATEWAY_RESPONSE_HEADER_TIMEOUT_SECONDS,
            settings.GATEWAY_IDLE_TIMEOUT_SECONDS,
            settings.GATEWAY_BODY_READ_TIMEOUT_SECONDS,
        )
        self.discovery = Discovery(
            settings.GATEWAY_TIER_PODS,
            dns={t: n for t, n in settings.GATEWAY_TIER_DNS.items() if n},
            port=settings.GATEWAY_POD_PORT,
            internal_port=settings.GATEWAY_POD_INTERNAL_PORT,
            eject_seconds=settings.GATEWAY_EJECT_SECONDS,
        )
        ttl = settings.GATEWAY_ROUTE_TTL_SECONDS
        self.routes: TtlCache[uuid.UUID, TenantRoute | None] = TtlCache(
            self.platform.tenant_route, ttl=ttl, on_lookup=metrics.cache_lookup_recorder("route")
        )
        self.devices: TtlCache[uuid.UUID, DeviceKey | None] = TtlCache(
            self.platform.device_key, ttl=ttl, on_lookup=metrics.cache_lookup_recorder("device")
        )
        self.auth = Authenticator(
            platform_key=platform_private_key(settings.PLATFORM_MASTER_KEY).public_key(),
            routes=self.routes,
            devices=self.devices,
        )
        self.slots = StreamSlots()
        metrics.open_streams.set_function(self.slots.open_count)  # read at scrape time, not kept per request
        self._limits_by_tier: dict[str, tuple[Bucket, int]] = {}
        self.redis: aioredis.Redis | None = None
        self.limiter = RateLimiter(None)
        # The one client to the pods. Client requests reach a pod's public listener with the proxy credential;
        # only the gateway's own calls (warm, deliver) carry the service credential, to its internal listener.
        self.pods = PodClient(
            discovery=self.discovery,
            pool=H1Pool(
                connect_timeout=self.timeouts.connect,
                keepalive_seconds=settings.GATEWAY_POOL_KEEPALIVE_SECONDS,
                head_limits=HeadLimits(settings.GATEWAY_MAX_HEADER_COUNT, settings.GATEWAY_MAX_HEADER_BYTES),
            ),
            timeouts=self.timeouts,
            proxy_authorization=bearer(proxy_credential(settings.PLATFORM_SERVICE_TOKEN)),
            service_authorization=bearer(settings.PLATFORM_SERVICE_TOKEN),
        )
        self.cold = ColdPath(
            client=self.pods,
            routes=self.routes,
            platform=self.platform,
            enabled=settings.GATEWAY_COLD_PATH_ENABLED,
            blob_cache_bytes=settings.GATEWAY_BLOB_CACHE_BYTES,
            warm_timeout=settings.GATEWAY_WARM_TIMEOUT_SECONDS,
            warm_queue_size=settings.GATEWAY_WARM_QUEUE_SIZE,
            route_ttl=ttl,
        )
        self.dispatch = Dispatch(HotPath(self.pods, max_body_bytes=self.limits.max_body_bytes), self.cold)
        self.own = OwnEndpoints(self.discovery, self.platform)
        self.request_ids = RequestIds()
        self.admission = Admission.from_settings()
        metrics.in_flight.set_function(lambda: self.admission.in_flight)
        self._started = asyncio.Lock()
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        async with self._started:
            if self._running:
                return
            self._running = True
            self.request_ids = RequestIds()  # here, not in __init__: in the worker process even if forked
            if settings.REDIS_URL:
                self.redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
                self.limiter = RateLimiter(self.redis)
                self._tasks.append(
                    asyncio.create_task(
                        listen_for_invalidations(
                            settings.REDIS_URL,
                            routes=self.routes,
                            devices=self.devices,
                            on_tenant=self.cold.invalidate,
                            on_reset=self.cold.reset,
                        )
                    )
                )
            self.discovery.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.cold.close()
        await self.pods.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not self._running:
            await self.start()
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                settle_garbage_collector(settings.GATEWAY_GC_THRESHOLD)
                install(self.admission)  # the server refuses by it before starting the app (gateway.limits.admission)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            route = surface.http_route(scope)
        except surface.Refused as exc:  # not on the allow-list: answered here, never forwarded
            await send_error(send, exc.status, exc.code, exc.message, exc.headers)
            metrics.requests_total.inc("none", str(exc.status))
            return
        if route.kind is surface.Kind.OWN:
            await self.own.answer(scope["path"], send)
            return
        if not self.admission.enter():  # gateway.limits.admission: refused at once past the bound
            metrics.requests_total.inc("none", str(await refuse(send)))
            return
        send = admitted = Admitted(self.admission, send)  # the response's start gives the place back
        started = time.perf_counter()
        tier, status = "none", 500
        try:
            status, tier = await self._tenant_request(scope, receive, send, started, route)
        finally:
            admitted.release()
            metrics.requests_total.inc(tier, str(status))

    async def _tenant_request(
        self, scope: dict[str, Any], receive: Receive, send: Send, started: float, target: surface.Route
    ) -> tuple[int, str]:
        """Framing, the caller, its limits; then the request, built once, to `Dispatch`."""
        headers = scope["headers"]
        try:
            declared = check_request(headers, self.limits)
        except FramingError as exc:
            return await _refuse(send, exc.status, exc.code, exc.message), "none"
        caller = self.auth.known(headers)
        if caller is None:
            try:
                caller = await self.auth.caller(headers)
            except TokenRejected as exc:
                code = "unauthenticated" if exc.status == 401 else "forbidden"
                extra = [(b"www-authenticate", b'Bearer realm="percolate"')] if exc.status == 401 else None
                return await _refuse(send, exc.status, code, exc.message, extra), "none"
        route = caller.route
        tenant = route.key
        bucket, max_streams = self._tier_limits(route.tier)
        decision = ALLOWED if self.limiter.spend(tenant) else await self.limiter.check(tenant, bucket)
        if not decision.allowed:
            metrics.rate_limited.labels(route.tier, "rate").inc()
            return await _refuse(
                send, 429, "rate_limited", "too many requests", [(b"retry-after", str(decision.retry_after).encode())]
            ), route.tier
        if target is surface.MODELS:
            await send_json(send, 200, models_body(route.tier))
            return 200, route.tier
        if not self.slots.acquire(tenant, max_streams):
            metrics.rate_limited.labels(route.tier, "streams").inc()
            return await _refuse(
                send, 429, "too_many_streams", "too many concurrent streams", [(b"retry-after", b"1")]
            ), route.tier
        try:
            read: bytes | RequestBody | None = None
            if declared or scope.get("http_version") not in HTTP1:  # HTTP/1 without framing has no body (RFC 9112 §6.3)
                reader = RequestBody(
                    receive, max_bytes=self.limits.max_body_bytes, read_timeout=self.timeouts.body_read
                )
                try:
                    read = await read_small(reader)  # a small body whole; a big one's start pushed back to stream
                except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
                    return await body_error(send, exc, self.limits.max_body_bytes), route.tier
            return await self.dispatch(self._request(scope, route, read, started), receive, send), route.tier
        finally:
            self.slots.release(tenant)

    def _request(
        self, scope: dict[str, Any], route: TenantRoute, read: bytes | RequestBody | None, started: float
    ) -> GatewayRequest:
        """The immutable request the layers below take."""
        given = header_value(scope["headers"], b"x-request-id")
        request_id = given if given and REQUEST_ID.match(given) else self.request_ids.next()
        method = scope["method"]
        return GatewayRequest(
            route=route,
            method=method.encode(),
            target=surface.target(scope),
            headers=self.pods.client_headers(scope, route, request_id),
            request_id=request_id,
            body=read if not isinstance(read, RequestBody) else None,
            rest=read if isinstance(read, RequestBody) else None,  # too big to hold: it streams to the pod
            started=started,
            chat=is_chat(method, scope["path"]),
        )

    def _tier_limits(self, tier: str) -> tuple[Bucket, int]:
        """The tier's token bucket and concurrent-stream cap, read from the tier policy once."""
        limits = self._limits_by_tier.get(tier)
        if limits is None:
            policy = settings.TIER_POLICY[tier]
            rpm = policy.requests_per_minute
            limits = self._limits_by_tier[tier] = (Bucket(rpm / 60, max(1, rpm // 6)), policy.max_concurrent_streams)
        return limits

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if not surface.websocket_allowed(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4404})
            return
        try:
            caller = self.auth.known(scope["headers"]) or await self.auth.caller(scope["headers"])
        except TokenRejected:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4401})
            return
        route = caller.route
        pod, _rank = self.pods.pods(route.tier).choose(route.key)
        headers = self.pods.client_headers(scope, route, self.request_ids.next())
        await proxy_websocket(scope, receive, send, client=self.pods, pod=pod, headers=headers)


async def _refuse(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> int:
    await send_error(send, status, code, message, headers)
    return status


application = Gateway()
