"""The gateway ASGI app: authenticate, limit, route by tier and consistent hash, and proxy streaming traffic.

Raw ASGI on the hot path: no Django middleware, no synchronous ORM call. Tenant routes and device keys come from
in-process TTL caches filled off the event loop on a miss and invalidated through Redis pub/sub.
"""

import asyncio
import gc
import logging
import time
import uuid
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from django.conf import settings
from multidict import CIMultiDict

from gateway import metrics, surface
from gateway.admission import Admission, Admitted, install, refuse
from gateway.cache import TtlCache
from gateway.callers import Authenticator
from gateway.coldpath import ColdPath
from gateway.discovery import Discovery
from gateway.errors import Receive, Send, send_error, send_json
from gateway.forwarding import REQUEST_ID as REQUEST_ID
from gateway.forwarding import SMALL_BODY as SMALL_BODY
from gateway.forwarding import Forwarding, RequestIds
from gateway.framing import FramingError, Limits, check_request
from gateway.h1client import HeadLimits
from gateway.h1pool import H1Pool
from gateway.invalidation import listen_for_invalidations
from gateway.models import models_body
from gateway.own_endpoints import OwnEndpoints
from gateway.platform import DeviceKey, Platform, TenantRoute
from gateway.ratelimit import ALLOWED, Bucket, RateLimiter, StreamSlots
from gateway.tokens import TokenRejected, platform_private_key
from gateway.upstream import Timeouts, make_session
from gateway.websocket import proxy_websocket
from percolate_platform.pod_credentials import bearer, proxy_credential

log = logging.getLogger(__name__)


def settle_garbage_collector(young_threshold: int) -> None:
    """Everything loaded at start-up (Django, the app) is moved out of the collector's sight (gc.freeze), and the
    young generation is collected every `young_threshold` allocations instead of every 700."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


class Gateway(OwnEndpoints, Forwarding):
    """Lifecycle, authentication and limits; forwarding is in gateway.forwarding, the cold path in gateway.coldpath."""

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
            self._load_route, ttl=ttl, on_lookup=metrics.cache_lookup_recorder("route")
        )
        self.devices: TtlCache[uuid.UUID, DeviceKey | None] = TtlCache(
            self._load_device, ttl=ttl, on_lookup=metrics.cache_lookup_recorder("device")
        )
        # Client requests reach a pod's public listener with the proxy credential; only the gateway's own calls
        # (warm, deliver) carry the service credential, to the pod's internal listener.
        self.proxy_authorization = bearer(proxy_credential(settings.PLATFORM_SERVICE_TOKEN))
        self.service_authorization = bearer(settings.PLATFORM_SERVICE_TOKEN)
        self.slots = StreamSlots()
        metrics.open_streams.set_function(self.slots.open_count)  # read at scrape time, not kept per request
        self._limits_by_tier: dict[str, tuple[Bucket, int]] = {}
        self.auth = Authenticator(
            platform_key=platform_private_key(settings.PLATFORM_MASTER_KEY).public_key(),
            routes=self.routes,
            devices=self.devices,
        )
        self.session: aiohttp.ClientSession | None = None
        self.pool = H1Pool(
            connect_timeout=self.timeouts.connect,
            keepalive_seconds=settings.GATEWAY_POOL_KEEPALIVE_SECONDS,
            head_limits=HeadLimits(settings.GATEWAY_MAX_HEADER_COUNT, settings.GATEWAY_MAX_HEADER_BYTES),
        )
        self.redis: aioredis.Redis | None = None
        self.limiter = RateLimiter(None)
        self._started = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._db_ok_until = 0.0
        self.cold = ColdPath(self)
        self.request_ids = RequestIds()
        self.admission = Admission.from_settings()
        metrics.in_flight.set_function(lambda: self.admission.in_flight)

    async def _load_route(self, tenant_id: uuid.UUID) -> TenantRoute | None:
        return await self.platform.tenant_route(tenant_id)

    async def _load_device(self, device_id: uuid.UUID) -> DeviceKey | None:
        return await self.platform.device_key(device_id)

    async def start(self) -> None:
        async with self._started:
            if self.session is not None:
                return
            self.session = make_session(self.timeouts)
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
        await self.pool.close()
        if self.session is not None:
            await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.session is None:
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
                install(self.admission)  # the server refuses by it before starting the app (gateway.admission)
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
            await self._own_endpoint(scope["path"], send)
            return
        if not self.admission.enter():  # gateway.admission: refused at once past the bound
            metrics.requests_total.inc("none", str(await refuse(send)))
            return
        send = admitted = Admitted(self.admission, send)  # the response's start gives the place back
        started = time.perf_counter()
        tier, status = "none", 500
        try:
            status, tier = await self._proxy(scope, receive, send, started, route)
        finally:
            admitted.release()
            metrics.requests_total.inc(tier, str(status))

    async def _proxy(
        self, scope: dict[str, Any], receive: Receive, send: Send, started: float, target: surface.Route
    ) -> tuple[int, str]:
        headers = scope["headers"]
        try:
            declared = check_request(headers, self.limits)
        except FramingError as exc:
            return await self._refuse(send, exc.status, exc.code, exc.message), "none"
        caller = self.auth.known(headers)
        if caller is None:
            try:
                caller = await self.auth.caller(headers)
            except TokenRejected as exc:
                code = "unauthenticated" if exc.status == 401 else "forbidden"
                extra = [(b"www-authenticate", b'Bearer realm="percolate"')] if exc.status == 401 else None
                return await self._refuse(send, exc.status, code, exc.message, extra), "none"
        route = caller.route
        tenant = route.key
        bucket, max_streams = self._tier_limits(route.tier)
        decision = ALLOWED if self.limiter.spend(tenant) else await self.limiter.check(tenant, bucket)
        if not decision.allowed:
            metrics.rate_limited.labels(route.tier, "rate").inc()
            return await self._refuse(
                send, 429, "rate_limited", "too many requests", [(b"retry-after", str(decision.retry_after).encode())]
            ), route.tier
        if target is surface.MODELS:
            await send_json(send, 200, models_body(route.tier))
            return 200, route.tier
        if not self.slots.acquire(tenant, max_streams):
            metrics.rate_limited.labels(route.tier, "streams").inc()
            return await self._refuse(
                send, 429, "too_many_streams", "too many concurrent streams", [(b"retry-after", b"1")]
            ), route.tier
        try:
            return await self._forward(scope, receive, send, caller, declared, started), route.tier
        finally:
            self.slots.release(tenant)

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
        pod, _rank = self.discovery.pods(route.tier).choose(route.key)
        assert self.session is not None
        headers = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self._upstream_headers(scope, route, self.request_ids.next())
        )
        await proxy_websocket(scope, receive, send, session=self.session, pod=pod, headers=headers)


application = Gateway()
