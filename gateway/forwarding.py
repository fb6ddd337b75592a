"""Forwarding a request to its tenant's tier pod: pod choice with retries, upstream headers, the streamed answer.

A chat request for a tenant that is not hot goes to the cold path instead (gateway.coldpath), also when the pod
answers that it does not hold the tenant.
"""

import functools
import itertools
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.auth import Caller
from gateway.coldpath import NOT_HOT_CODES, ColdPath, is_chat
from gateway.discovery import Discovery
from gateway.errors import Receive, Send, error_code_of, send_error
from gateway.framing import Limits
from gateway.h1client import H1Response, UpstreamConnectError, UpstreamError, UpstreamHeadersTooLarge
from gateway.h1pool import H1Pool
from gateway.headers import Headers, header_value, strip_request, strip_response
from gateway.platform import TenantRoute
from gateway.surface import target
from gateway.upstream import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    RequestBody,
    Timeouts,
    stream_response,
    wait_for_disconnect,
)

REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")


@functools.lru_cache(maxsize=4096)
def route_header(tier: str, pod: str, rank: int) -> bytes:
    """The X-Percolate-Route value (tier/pod/rank): few distinct values, made once each."""
    return f"{tier}/{pod}/{rank}".encode()


class RequestIds:
    """Unique request ids without a syscall each (os.urandom per request cost more than the header work): a random
    prefix per gateway process, then a counter. Made when the gateway starts, in the worker process itself."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> bytes:
        return f"{self._prefix}{next(self._counter):016x}".encode()


SMALL_BODY = 64 * 1024
HTTP1 = ("1.0", "1.1")


@dataclass(frozen=True)
class PodRequest:
    """A client's request as it goes to its tenant's pod, built once (gateway.forwarding) for the hot path and the
    cold path alike: the allowed target with its query string, the allowed headers and the gateway's own."""

    method: bytes
    target: bytes
    headers: Headers
    request_id: bytes


def _small_and_whole(response: H1Response) -> bool:
    """A response with a small declared length that is not an event stream: read it at once."""
    length = response.content_length
    return length is not None and length <= SMALL_BODY and response.content_type != b"text/event-stream"


class Forwarding:
    """Mixin of Gateway (which sets these attributes)."""

    limits: Limits
    timeouts: Timeouts
    discovery: Discovery
    pool: H1Pool
    proxy_authorization: bytes
    cold: ColdPath
    request_ids: RequestIds

    async def _refuse(
        self, send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> int:
        await send_error(send, status, code, message, headers)
        return status

    def _upstream_headers(self, scope: dict[str, Any], route: TenantRoute, request_id: bytes) -> Headers:
        """The client's allowed headers and the gateway's own; the pod's credential here is the proxy credential,
        which opens only the pod's public listener (never the service credential of its internal API)."""
        client = (scope.get("client") or ("", 0))[0]
        return [
            *strip_request(scope["headers"]),
            (b"authorization", self.proxy_authorization),
            (b"x-percolate-tenant", route.key.encode()),
            (b"x-percolate-generation", str(route.generation).encode()),
            (b"x-request-id", request_id),
            (b"x-forwarded-for", client.encode()),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        ]

    async def _forward(
        self, scope: dict[str, Any], receive: Receive, send: Send, caller: Caller, declared: int | None, started: float
    ) -> int:
        route = caller.route
        given = header_value(scope["headers"], b"x-request-id")
        request_id = given if given and REQUEST_ID.match(given) else self.request_ids.next()
        body: RequestBody | None = None
        payload: Any = None
        if declared or scope.get("http_version") not in HTTP1:  # HTTP/1 without framing has no body (RFC 9112 §6.3)
            body = RequestBody(receive, max_bytes=self.limits.max_body_bytes, read_timeout=self.timeouts.body_read)
            try:
                payload = await self._small_body(body)
            except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
                return await self._body_error(send, exc)
        whole = payload is None or type(payload) is bytes  # nothing of it is still to be read from the client
        request = PodRequest(
            scope["method"].encode(), target(scope), self._upstream_headers(scope, route, request_id), request_id
        )
        cold_eligible = whole and self.cold.enabled and is_chat(scope)
        if cold_eligible and self.cold.is_cold(route):
            return await self.cold.handle(receive, send, route, request, payload, started)
        if route.moving and route.state != "hot":
            # Only the cold path can hold a request through a tier move (it waits for the new tier); a request it
            # cannot take (a streamed body, cold path off) must not load the tenant on a tier it is leaving.
            return await self._refuse(
                send, 503, "tenant_moving", "the workspace is moving tiers", [(b"retry-after", b"1")]
            )
        pods = self.discovery.pods(route.tier)
        disconnected = functools.partial(wait_for_disconnect, receive)  # watched only while headers are slow
        for _attempt in range(3):
            pod, rank = pods.choose(route.key)
            if pod is None:
                return await self._refuse(
                    send, 503, "no_pods", f"no pods for tier {route.tier}", [(b"retry-after", b"5")]
                )
            try:
                response = await self.pool.request(
                    request.method,
                    pod,
                    request.target,
                    request.headers,
                    payload,
                    header_timeout=self.timeouts.response_headers,
                    disconnected=disconnected,
                )
            except UpstreamConnectError:
                metrics.upstream_errors.labels("connect").inc()
                pods.eject(pod)
                if whole:
                    continue  # nothing of the body was consumed: the next choice gets it
                return await self._refuse(send, 502, "upstream_unavailable", "tier pod refused the connection")
            except TimeoutError:
                metrics.upstream_errors.labels("timeout").inc()
                return await self._refuse(send, 504, "upstream_timeout", "tier pod did not answer in time")
            except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
                return await self._body_error(send, exc)
            except UpstreamHeadersTooLarge as exc:
                metrics.upstream_errors.labels("headers_too_large").inc()
                return await self._refuse(send, 502, "upstream_headers_too_large", str(exc))
            except UpstreamError as exc:
                if body is not None and body.error is not None:
                    return await self._body_error(send, body.error)
                metrics.upstream_errors.labels("protocol").inc()
                return await self._refuse(send, 502, "upstream_error", f"tier pod failed: {exc}")
            if response.status == 401:  # the pod refused the gateway, not the client: never the client's 401
                response.close()
                metrics.upstream_errors.labels("refused_gateway").inc()
                return await self._refuse(send, 502, "upstream_refused", "the tier pod refused the gateway")
            try:
                idle = self.timeouts.idle
                raw: bytes | None = None
                if cold_eligible and response.status in (409, 503):
                    raw = await self._read_whole(response)
                    if raw is None:
                        return await self._refuse(send, 502, "upstream_error", "tier pod failed mid-answer")
                    if error_code_of(raw) in NOT_HOT_CODES:  # the pod does not hold the tenant: cold after all
                        self.cold.forget_warm(route.tenant_id)
                        return await self.cold.handle(receive, send, route, request, payload, started)
                metrics.route_choices.inc(route.tier, "first" if rank == 0 else "fallback")
                metrics.request_seconds.observe(time.perf_counter() - started, route.tier)
                out = [
                    *strip_response(response.raw_headers),
                    (b"x-request-id", request_id),
                    (b"x-percolate-route", route_header(route.tier, pod, rank)),
                ]
                if raw is None and _small_and_whole(
                    response
                ):  # one send, no streaming machinery, for the common answer
                    raw = response.take_whole()  # usually it came in with the headers
                    if raw is not None:
                        response.release()
                    elif (raw := await self._read_whole(response)) is None:
                        return await self._refuse(send, 502, "upstream_error", "tier pod failed mid-answer")
                if raw is not None:
                    out.append((b"content-length", b"%d" % len(raw)))  # whole: framed like the pod framed it
                await send({"type": "http.response.start", "status": response.status, "headers": out})
                if raw is not None:
                    await send({"type": "http.response.body", "body": raw, "more_body": False})
                elif not await stream_response(response, send, receive, idle_timeout=idle):
                    metrics.upstream_errors.labels("aborted").inc()
                return response.status
            except BaseException:
                response.close()  # cancelled or failed mid-way: never leave the pod connection dangling
                raise
        return await self._refuse(send, 502, "upstream_unavailable", "no tier pod accepted the connection")

    async def _read_whole(self, response: H1Response) -> bytes | None:
        """The whole (small) body, the connection released; None if the pod broke off or stalled."""
        try:
            raw = await response.read(self.timeouts.idle)
        except (UpstreamError, TimeoutError):
            metrics.upstream_errors.labels("protocol").inc()
            response.close()
            return None
        response.release()
        return raw

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
