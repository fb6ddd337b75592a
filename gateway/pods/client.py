"""The one client to the tier pods: every call the gateway makes to a pod goes through a `PodClient`, built once
(gateway.app) and handed to whoever calls a pod (the hot path, the cold path's warm and deliver, WebSockets).

It holds the connection pool (gateway.pods.h1pool, our HTTP/1.1 pool: 3.5x aiohttp on the proxy path, see
docs/decisions.md), discovery and the tenant → pod choice (gateway.pods.discovery, rendezvous hashing), the
timeouts, both credentials and the headers built from them, and the retry rule: a pod that refuses the connection
is ejected for a while and the request goes to the tenant's next choice, if nothing of its body was consumed.

- client requests go to a pod's public listener with the *proxy* credential (`forward`, `send_to`);
- the gateway's own calls (`/internal/warm`, `/internal/deliver`) go to its internal listener with the *service*
  credential (`call_internal`, `choose_and_call_internal`); their paths are made from the tenant's id, never
  from a client's input;
- WebSockets, which the pool does not speak, go through one aiohttp session (`connect_websocket`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from gateway import metrics
from gateway.headers import Headers, strip_request
from gateway.platform import TenantRoute
from gateway.pods.discovery import Discovery
from gateway.pods.h1client import H1Response, UpstreamConnectError
from gateway.pods.h1pool import H1Pool
from gateway.pods.hashing import PodSet
from gateway.request import GatewayRequest

NOT_HOT_CODES = frozenset({"unknown_generation", "load_failed"})  # a pod's answer: it does not hold the tenant
ATTEMPTS = 3  # pods tried for one request when they refuse the connection


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    response_headers: float = 30.0
    idle: float = 300.0  # between two reads of a streaming body; a healthy stream never waits this long
    body_read: float = 30.0  # between two chunks of the client's request body


class NoPods(Exception):
    """The tier has no pod to send to (none discovered, or all ejected)."""

    def __init__(self, tier: str) -> None:
        super().__init__(f"no pods for tier {tier}")
        self.tier = tier


class Unreachable(Exception):
    """No pod accepted the connection: `tried_all` after every attempt, else the body was already partly sent."""

    def __init__(self, *, tried_all: bool) -> None:
        super().__init__("no tier pod accepted the connection" if tried_all else "tier pod refused the connection")
        self.tried_all = tried_all


@dataclass(frozen=True)
class PodAnswer:
    response: H1Response
    pod: str  # the pod's public address
    rank: int  # 0: the tenant's first choice; more: a fallback after ejections


class PodClient:
    def __init__(
        self,
        *,
        discovery: Discovery,
        pool: H1Pool,
        timeouts: Timeouts,
        proxy_authorization: bytes,
        service_authorization: bytes,
    ) -> None:
        self.discovery = discovery
        self.pool = pool
        self.timeouts = timeouts
        self._proxy_authorization = proxy_authorization
        self._service_authorization = service_authorization
        self._session: aiohttp.ClientSession | None = None

    # -- where ----------------------------------------------------------------------------------------------------

    def pods(self, tier: str) -> PodSet:
        return self.discovery.pods(tier)

    # -- headers --------------------------------------------------------------------------------------------------

    def client_headers(self, scope: dict[str, Any], route: TenantRoute, request_id: bytes) -> Headers:
        """What a client's request carries to its pod: its allowed headers and the gateway's own; the credential is
        the proxy credential, which opens only the pod's public listener (never the service credential)."""
        client = (scope.get("client") or ("", 0))[0]
        return [
            *strip_request(scope["headers"]),
            (b"authorization", self._proxy_authorization),
            (b"x-percolate-tenant", route.key.encode()),
            (b"x-percolate-generation", str(route.generation).encode()),
            (b"x-request-id", request_id),
            (b"x-forwarded-for", client.encode()),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        ]

    def service_headers(self, request_id: str = "") -> Headers:
        headers = [(b"authorization", self._service_authorization), (b"content-type", b"application/json")]
        return [*headers, (b"x-request-id", request_id.encode())] if request_id else headers

    # -- client requests, to the public listener ------------------------------------------------------------------

    async def forward(
        self, request: GatewayRequest, *, disconnected: Callable[[], Awaitable[Any]] | None = None
    ) -> PodAnswer:
        """Send `request` to its tenant's pod and return once the answer's headers are in. A pod that refuses the
        connection is ejected and the next choice tried, while the body is whole. Raises NoPods, Unreachable,
        TimeoutError (no headers in time), ClientGone, the body's errors and other UpstreamErrors."""
        route = request.route
        pods = self.pods(route.tier)
        for _attempt in range(ATTEMPTS):
            pod, rank = pods.choose(route.key)
            if pod is None:
                raise NoPods(route.tier)
            try:  # the pool directly, not through send_to: one coroutine less per request on the hot path
                response = await self.pool.request(
                    request.method,
                    pod,
                    request.target,
                    request.headers,
                    request.payload,
                    header_timeout=self.timeouts.response_headers,
                    disconnected=disconnected,
                )
            except UpstreamConnectError:
                metrics.upstream_errors.labels("connect").inc()
                pods.eject(pod)
                if request.whole:
                    continue  # nothing of the body was consumed: the next choice gets it
                raise Unreachable(tried_all=False) from None
            return PodAnswer(response, pod, rank)
        raise Unreachable(tried_all=True)

    async def send_to(
        self, pod: str, request: GatewayRequest, *, disconnected: Callable[[], Awaitable[Any]] | None = None
    ) -> H1Response:
        """Send `request` to this pod (one the cold path warmed), no retry elsewhere."""
        return await self.pool.request(
            request.method,
            pod,
            request.target,
            request.headers,
            request.payload,
            header_timeout=self.timeouts.response_headers,
            disconnected=disconnected,
        )

    async def read_whole(self, response: H1Response) -> bytes:
        """A (small) answer's whole body, the connection released; raises UpstreamError or TimeoutError (closed)."""
        try:
            raw = await response.read(self.timeouts.idle)
        except BaseException:
            response.close()
            raise
        response.release()
        return raw

    # -- the gateway's own calls, to the internal listener --------------------------------------------------------

    async def call_internal(
        self, pod: str, target: bytes, body: bytes, *, timeout: float, request_id: str = ""
    ) -> tuple[int, bytes]:
        """POST to `pod`'s internal listener (pod: its public address); status and body within `timeout`."""
        address = self.discovery.internal_address(pod)
        return await self.pool.call(b"POST", address, target, self.service_headers(request_id), body, timeout=timeout)

    async def choose_and_call_internal(
        self, tier: str, tenant_key: str, target: bytes, body: bytes, *, timeout: float
    ) -> tuple[str, int, bytes]:
        """`call_internal` on the tenant's pod, ejecting pods that refuse the connection: (pod, status, body).
        Raises NoPods, Unreachable, TimeoutError and other UpstreamErrors."""
        pods = self.pods(tier)
        for _attempt in range(ATTEMPTS):
            pod, _rank = pods.choose(tenant_key)
            if pod is None:
                raise NoPods(tier)
            try:
                status, raw = await self.call_internal(pod, target, body, timeout=timeout)
            except UpstreamConnectError:
                pods.eject(pod)
                continue
            return pod, status, raw
        raise Unreachable(tried_all=True)

    # -- WebSockets (the one thing the pool does not speak) -------------------------------------------------------

    async def connect_websocket(self, url: str, headers: Headers) -> aiohttp.ClientWebSocketResponse:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=1000, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True
            )
            timeout = aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect, sock_read=self.timeouts.idle)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=timeout,
            )
        forwarded = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in headers
            if not name.lower().startswith(b"sec-websocket")
        )
        return await self._session.ws_connect(url, headers=forwarded, autoping=True, heartbeat=30)

    async def close(self) -> None:
        await self.pool.close()
        if self._session is not None:
            await self._session.close()
