"""The gateway ASGI app: authenticate, limit, route by tier and consistent hash, and proxy streaming traffic.

Raw ASGI on the hot path: no Django middleware, no synchronous ORM call. Tenant routes and device keys come from
in-process TTL caches filled off the event loop on a miss and invalidated through Redis pub/sub.
"""

import asyncio
import json
import logging
import os
import re
import time
import uuid
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from multidict import CIMultiDict
from prometheus_client import generate_latest

from gateway import metrics
from gateway.auth import Caller, VerifiedTokens, authenticate
from gateway.cache import TtlCache
from gateway.coldpath import NOT_HOT_CODES, ColdPath, is_chat
from gateway.discovery import Discovery
from gateway.errors import Receive, Send, send_error, send_json
from gateway.framing import FramingError, Limits, check_request
from gateway.headers import header_value, strip_request, strip_response
from gateway.invalidation import listen_for_invalidations
from gateway.ratelimit import Bucket, RateLimiter, StreamSlots
from gateway.tokens import TokenRejected, platform_private_key
from gateway.upstream import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    RequestBody,
    Timeouts,
    make_session,
    stream_response,
)
from gateway.websocket import proxy_websocket
from tenants.selectors import DeviceKey, TenantRoute, device_key, tenant_route

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
SMALL_BODY = 64 * 1024


def _db_ping() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _error_code(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ""


def _small_and_whole(response: aiohttp.ClientResponse) -> bool:
    """A response with a small declared length that is not an event stream: read it at once."""
    length = response.content_length
    return length is not None and length <= SMALL_BODY and response.content_type != "text/event-stream"


class Gateway:
    def __init__(self) -> None:
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
            eject_seconds=settings.GATEWAY_EJECT_SECONDS,
        )
        ttl = settings.GATEWAY_ROUTE_TTL_SECONDS
        self.routes: TtlCache[uuid.UUID, TenantRoute | None] = TtlCache(self._load_route, ttl=ttl)
        self.devices: TtlCache[uuid.UUID, DeviceKey | None] = TtlCache(self._load_device, ttl=ttl)
        self.platform_key = platform_private_key(settings.PLATFORM_MASTER_KEY).public_key()
        self.service_authorization = f"Bearer {settings.PLATFORM_SERVICE_TOKEN}".encode()
        self.slots = StreamSlots()
        self.verified_tokens = VerifiedTokens()
        self.session: aiohttp.ClientSession | None = None
        self.redis: aioredis.Redis | None = None
        self.limiter = RateLimiter(None)
        self._started = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._db_ok_until = 0.0
        self.cold = ColdPath(self)

    async def _load_route(self, tenant_id: uuid.UUID) -> TenantRoute | None:
        return await sync_to_async(tenant_route, thread_sensitive=False)(tenant_id=tenant_id)

    async def _load_device(self, device_id: uuid.UUID) -> DeviceKey | None:
        return await sync_to_async(device_key, thread_sensitive=False)(device_id=device_id)

    async def start(self) -> None:
        async with self._started:
            if self.session is not None:
                return
            self.session = make_session(self.timeouts)
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
        if self.session is not None:
            await self.session.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _own_endpoint(self, path: str, send: Send) -> bool:
        if path == "/healthz":
            await send_json(send, 200, b'{"status": "ok"}')
        elif path == "/readyz":
            ready, reason = await self._readiness()
            await send_json(
                send, 200 if ready else 503, f'{{"ready": {str(ready).lower()}, "reason": "{reason}"}}'.encode()
            )
        elif path == "/metrics":
            body = generate_latest(metrics.registry)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain; version=0.0.4")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            return False
        return True

    async def _readiness(self) -> tuple[bool, str]:
        if not self.discovery.has_pods():
            return False, "no tier pods discovered"
        if time.monotonic() > self._db_ok_until:
            try:
                await asyncio.wait_for(sync_to_async(_db_ping, thread_sensitive=False)(), 2)
            except Exception:  # any failure means not ready
                return False, "database does not answer"
            self._db_ok_until = time.monotonic() + 5
        return True, "ok"

    async def _authenticate(self, headers: list[tuple[bytes, bytes]]) -> Caller:
        return await authenticate(
            [value for name, value in headers if name.lower() == b"authorization"],
            named_tenant=header_value(headers, b"x-percolate-tenant"),
            platform_key=self.platform_key,
            device_keys=self.devices.get,
            routes=self.routes.get,
            verified=self.verified_tokens,
        )

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if await self._own_endpoint(scope["path"], send):
            return
        started = time.perf_counter()
        tier, status = "none", 500
        try:
            status, tier = await self._proxy(scope, receive, send, started)
        finally:
            metrics.requests_total.labels(tier, str(status)).inc()

    async def _refuse(
        self, send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> int:
        await send_error(send, status, code, message, headers)
        return status

    async def _proxy(self, scope: dict[str, Any], receive: Receive, send: Send, started: float) -> tuple[int, str]:
        headers = scope["headers"]
        try:
            declared = check_request(headers, self.limits)
        except FramingError as exc:
            return await self._refuse(send, exc.status, exc.code, exc.message), "none"
        try:
            caller = await self._authenticate(headers)
        except TokenRejected as exc:
            code = "unauthenticated" if exc.status == 401 else "forbidden"
            extra = [(b"www-authenticate", b'Bearer realm="percolate"')] if exc.status == 401 else None
            return await self._refuse(send, exc.status, code, exc.message, extra), "none"
        route = caller.route
        policy = settings.TIER_POLICY[route.tier]
        tenant = str(route.tenant_id)
        decision = await self.limiter.check(
            tenant, Bucket(policy.requests_per_minute / 60, max(1, policy.requests_per_minute // 6))
        )
        if not decision.allowed:
            metrics.rate_limited.labels(route.tier, "rate").inc()
            return await self._refuse(
                send, 429, "rate_limited", "too many requests", [(b"retry-after", str(decision.retry_after).encode())]
            ), route.tier
        if not self.slots.acquire(tenant, policy.max_concurrent_streams):
            metrics.rate_limited.labels(route.tier, "streams").inc()
            return await self._refuse(
                send, 429, "too_many_streams", "too many concurrent streams", [(b"retry-after", b"1")]
            ), route.tier
        metrics.open_streams.inc()
        try:
            return await self._forward(scope, receive, send, caller, declared, started), route.tier
        finally:
            metrics.open_streams.dec()
            self.slots.release(tenant)

    def _upstream_headers(self, scope: dict[str, Any], route: TenantRoute, request_id: bytes) -> CIMultiDict[str]:
        client = (scope.get("client") or ("", 0))[0]
        pairs = [
            *strip_request(scope["headers"]),
            (b"authorization", self.service_authorization),
            (b"x-percolate-tenant", str(route.tenant_id).encode()),
            (b"x-percolate-generation", str(route.generation).encode()),
            (b"x-request-id", request_id),
            (b"x-forwarded-for", client.encode()),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        ]
        return CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs)

    async def _forward(
        self, scope: dict[str, Any], receive: Receive, send: Send, caller: Caller, declared: int | None, started: float
    ) -> int:
        route = caller.route
        given = header_value(scope["headers"], b"x-request-id")
        request_id = given if given and REQUEST_ID.match(given) else os.urandom(16).hex().encode()
        body = RequestBody(receive, max_bytes=self.limits.max_body_bytes, read_timeout=self.timeouts.body_read)
        try:
            payload: Any = await self._small_body(body)
        except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
            return await self._body_error(send, exc)
        cold_eligible = self.cold.enabled and is_chat(scope) and isinstance(payload, bytes | None)
        if cold_eligible and self.cold.is_cold(route):
            return await self.cold.handle(scope, receive, send, route, request_id, payload, started)
        pods = self.discovery.pods(route.tier)
        query = scope.get("query_string") or b""
        target = scope.get("raw_path") or scope["path"].encode()
        target += b"?" + query if query else b""
        assert self.session is not None
        for _attempt in range(3):
            pod, rank = pods.choose(str(route.tenant_id))
            if pod is None:
                return await self._refuse(
                    send, 503, "no_pods", f"no pods for tier {route.tier}", [(b"retry-after", b"5")]
                )
            try:
                async with asyncio.timeout(self.timeouts.response_headers):  # no extra task, unlike wait_for
                    response = await self.session.request(
                        scope["method"],
                        f"http://{pod}{target.decode('latin-1')}",
                        data=payload,
                        headers=self._upstream_headers(scope, route, request_id),
                        allow_redirects=False,
                    )
            except aiohttp.ClientConnectorError:
                metrics.upstream_errors.labels("connect").inc()
                pods.eject(pod)
                if isinstance(payload, bytes | None):
                    continue  # nothing of the body was consumed: the next choice gets it
                return await self._refuse(send, 502, "upstream_unavailable", "tier pod refused the connection")
            except TimeoutError:
                metrics.upstream_errors.labels("timeout").inc()
                return await self._refuse(send, 504, "upstream_timeout", "tier pod did not answer in time")
            except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
                return await self._body_error(send, exc)
            except aiohttp.ClientError as exc:
                if body.error is not None:
                    return await self._body_error(send, body.error)
                metrics.upstream_errors.labels("protocol").inc()
                return await self._refuse(send, 502, "upstream_error", f"tier pod failed: {type(exc).__name__}")
            raw: bytes | None = None
            if cold_eligible and response.status in (409, 503):
                raw = await response.read()
                response.release()
                if _error_code(raw) in NOT_HOT_CODES:  # the pod does not hold the tenant: cold after all
                    self.cold.forget_warm(route.tenant_id)
                    return await self.cold.handle(scope, receive, send, route, request_id, payload, started)
            metrics.route_choices.labels(route.tier, "first" if rank == 0 else "fallback").inc()
            metrics.request_seconds.labels(route.tier).observe(time.perf_counter() - started)
            out = [
                *strip_response(response.raw_headers),
                (b"x-request-id", request_id),
                (b"x-percolate-route", f"{route.tier}/{pod}/{rank}".encode()),
            ]
            if raw is None and _small_and_whole(response):
                raw = await response.read()  # one send, no streaming machinery, for the common small answer
                response.release()
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            if raw is not None:
                await send({"type": "http.response.body", "body": raw, "more_body": False})
            elif not await stream_response(response, send, receive):
                metrics.upstream_errors.labels("aborted").inc()
            return response.status
        return await self._refuse(send, 502, "upstream_unavailable", "no tier pod accepted the connection")

    async def _small_body(self, body: RequestBody) -> bytes | RequestBody | None:
        """Small bodies are read whole (so a refused connection can be retried on the next pod); big ones stream."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in body.prefix(SMALL_BODY):
            chunks.append(chunk)
            size += len(chunk)
        if body.finished:
            return b"".join(chunks) if size else None
        body.push_back(b"".join(chunks))
        return body

    async def _body_error(self, send: Send, exc: BaseException) -> int:
        if isinstance(exc, BodyTooLarge):
            return await self._refuse(send, 413, "body_too_large", f"body exceeds {self.limits.max_body_bytes} bytes")
        if isinstance(exc, BodyTimeout):
            return await self._refuse(send, 408, "body_timeout", "request body arrived too slowly")
        return 499  # the client went away; nobody to answer

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            caller = await self._authenticate(scope["headers"])
        except TokenRejected:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4401})
            return
        route = caller.route
        pod, _rank = self.discovery.pods(route.tier).choose(str(route.tenant_id))
        assert self.session is not None
        headers = self._upstream_headers(scope, route, os.urandom(16).hex().encode())
        await proxy_websocket(scope, receive, send, session=self.session, pod=pod, headers=headers)


application = Gateway()
