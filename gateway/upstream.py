"""The proxy's I/O around the pod connection pool (gateway.h1pool): request bodies streamed up with a size cap and a
read deadline, response bodies streamed down chunk by chunk (each `send` awaited, which is the backpressure), and
the upstream released the moment the client goes away. The aiohttp session serves the pod calls of the cold path
and WebSockets.

Abort rule (as mitmproxy): an upstream that fails before response headers is a 502 (504 on timeout); after headers
the client connection is closed, never a half-answer dressed as a whole one.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from gateway.errors import Receive, Send
from gateway.h1client import ClientGone as ClientGone
from gateway.h1client import H1Response


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    response_headers: float = 30.0
    idle: float = 300.0  # between two reads of a streaming body; a healthy stream never waits this long
    body_read: float = 30.0  # between two chunks of the client's request body


def make_session(timeouts: Timeouts, *, limit: int = 1000) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=30, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=None, connect=timeouts.connect, sock_read=timeouts.idle),
    )


class RequestBody:
    """The client's body, capped in size and read with a per-chunk deadline. The first bytes can be read ahead
    (`prefix`) and pushed back, so a small body is sent whole and a big one streams."""

    def __init__(self, receive: Receive, *, max_bytes: int, read_timeout: float) -> None:
        self._receive = receive
        self._max = max_bytes
        self._timeout = read_timeout
        self._pending = b""
        self.finished = False
        self.received = 0
        self.error: Exception | None = None

    async def _next_chunk(self) -> bytes:
        try:
            async with asyncio.timeout(self._timeout):  # no task per read, unlike wait_for
                message = await self._receive()
        except TimeoutError as exc:
            self.error = BodyTimeout()
            raise self.error from exc
        if message["type"] == "http.disconnect":
            self.error = ClientGone()
            raise self.error
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self._max:
            self.error = BodyTooLarge()
            raise self.error
        self.finished = not message.get("more_body", False)
        return chunk

    async def prefix(self, limit: int) -> AsyncIterator[bytes]:
        size = 0
        while not self.finished and size < limit:
            chunk = await self._next_chunk()
            size += len(chunk)
            yield chunk

    def push_back(self, data: bytes) -> None:
        self._pending = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._pending:
            data, self._pending = self._pending, b""
            yield data
        while not self.finished:
            chunk = await self._next_chunk()
            if chunk:
                yield chunk


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _copy_body(response: H1Response, send: Send, idle_timeout: float) -> None:
    while (chunk := await response.next_chunk(idle_timeout)) is not None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream_response(response: H1Response, send: Send, receive: Receive, *, idle_timeout: float) -> bool:
    """Copy the upstream body to the client; False if either side went away before the end. The copy and a
    disconnect watcher race once per response (not per chunk): a client that leaves cancels the copy at once."""
    copy = asyncio.ensure_future(_copy_body(response, send, idle_timeout))
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait((copy, watcher), return_when=asyncio.FIRST_COMPLETED)
        if not copy.done():
            copy.cancel()
            return False
        return copy.exception() is None
    except asyncio.CancelledError:
        copy.cancel()
        raise
    finally:
        watcher.cancel()
        if copy.done() and not copy.cancelled() and copy.exception() is None:
            response.release()
        else:
            response.close()
