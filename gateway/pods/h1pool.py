"""Persistent HTTP/1.1 connections to the tier pods, one idle stack per pod (most recently used first).

A connection kept idle longer than `keepalive_seconds` is dropped rather than reused: the pods' servers close idle
connections after a few seconds (uvicorn: 5 s), and a request written into a closing connection is lost. If it
happens anyway (StaleConnection), an idempotent request is sent once more on a new connection; any other request
fails as an upstream error rather than risk running twice.
"""

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from gateway.pods.h1client import (
    H1Connection,
    H1Response,
    HeadLimits,
    StaleConnection,
    UpstreamConnectError,
    UpstreamError,
)

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
BODYLESS_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"DELETE", b"TRACE"})

Headers = list[tuple[bytes, bytes]]


def request_head(method: bytes, target: bytes, pod: str, headers: Headers, length: int | None) -> bytes:
    """The request line and headers; `length` None means a chunked body. Header values come from a parsed request
    (no CR/LF possible) or from the gateway itself."""
    parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", pod.encode("ascii"), b"\r\n"]
    for name, value in headers:
        parts += [name, b": ", value, b"\r\n"]
    if length is None:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif length or method not in BODYLESS_METHODS:
        parts += [b"content-length: ", str(length).encode(), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


class H1Pool:
    def __init__(
        self,
        *,
        connect_timeout: float,
        keepalive_seconds: float = 4.0,
        max_idle_per_pod: int = 512,
        head_limits: HeadLimits | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._head_limits = head_limits or HeadLimits()
        self._keepalive = keepalive_seconds
        self._max_idle = max_idle_per_pod
        self._idle: dict[str, list[H1Connection]] = {}
        self._closed = False

    async def request(
        self,
        method: bytes,
        pod: str,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterable[bytes] | None,
        *,
        header_timeout: float | None = None,
        disconnected: Callable[[], Awaitable[Any]] | None = None,
    ) -> H1Response:
        """Send a request to `pod` ("host:port") and return the answer once its headers are in (TimeoutError
        after `header_timeout` seconds; ClientGone if `disconnected` returns first). UpstreamConnectError means
        nothing was sent; other UpstreamErrors mean the pod broke the exchange."""
        length = None if body is not None and not isinstance(body, bytes) else len(body or b"")
        head = request_head(method, target, pod, headers, length)
        retry = length is not None and method in IDEMPOTENT
        while True:
            conn = self._checkout(pod) or await self._connect(pod)
            try:
                return await conn.exchange(
                    head,
                    body,
                    head_request=method == b"HEAD",
                    header_timeout=header_timeout,
                    disconnected=disconnected,
                )
            except StaleConnection:
                if not retry:
                    raise
                retry = False

    async def call(
        self, method: bytes, pod: str, target: bytes, headers: Headers, body: bytes | None, *, timeout: float
    ) -> tuple[int, bytes]:
        """A whole small exchange (the gateway's own calls to a pod): status and body within `timeout` seconds."""
        async with asyncio.timeout(timeout):
            response = await self.request(method, pod, target, headers, body)
            try:
                raw = await response.read(timeout)
            except BaseException:
                response.close()
                raise
            response.release()
            return response.status, raw

    def _checkout(self, pod: str) -> H1Connection | None:
        stack = self._idle.get(pod)
        deadline = time.monotonic() - self._keepalive
        while stack:
            conn = stack.pop()
            if not conn.closed and conn.idle_since > deadline:
                return conn
            conn.abort()
        return None

    async def _connect(self, pod: str) -> H1Connection:
        if self._closed:
            raise UpstreamError("the gateway is shutting down")
        host, _, port = pod.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: H1Connection(self._forget, self._head_limits), host, int(port)
                )
        except (OSError, TimeoutError, ValueError) as exc:
            raise UpstreamConnectError(f"cannot connect to {pod}: {exc or type(exc).__name__}") from exc
        conn.pod = pod
        conn.on_release = self._put
        return conn

    def _put(self, conn: H1Connection) -> None:
        stack = self._idle.setdefault(conn.pod, [])
        if self._closed or len(stack) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        stack.append(conn)

    def _forget(self, conn: H1Connection) -> None:
        stack = self._idle.get(conn.pod)
        if stack and conn in stack:
            stack.remove(conn)

    def idle_count(self, pod: str) -> int:
        return len(self._idle.get(pod, ()))

    async def close(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            for conn in stack:
                conn.abort()
        self._idle.clear()
