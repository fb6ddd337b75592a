"""One HTTP/1.1 exchange at a time over one persistent connection to a tier pod, parsed by httptools.

Why not aiohttp here: on the proxy path its per-request machinery cost more than the rest of the gateway together
(bench.http_clients, docs/decisions.md). This protocol does only what the proxy needs: write the request head and
body (flow-controlled with pause_writing), parse the answer with httptools, and hand the body over chunk by chunk,
pausing reads from the pod while more than HIGH_WATER bytes wait for a slow client. The pool is in gateway.pods.h1pool.
"""

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools

from gateway.errors import ClientGone as ClientGone

HIGH_WATER = 256 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
STATUS_LINE_ALLOWANCE = 1024  # a pod's answer head may hold this much beyond the header limit (its status line)
WATCH_CLIENT_AFTER = 0.05  # seconds without answer headers before the client's disconnect is watched too


class UpstreamError(Exception):
    """The pod broke the exchange: closed early or answered with something that is not HTTP/1.1."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made, so nothing was sent: another pod may be tried."""


class StaleConnection(UpstreamError):
    """A reused keep-alive connection closed before a single byte of the answer arrived."""


class UpstreamHeadersTooLarge(UpstreamError):
    """The pod's answer head went past the gateway's header limits (count or bytes): it is dropped unread."""


@dataclass(frozen=True)
class HeadLimits:
    """What a pod's answer head may hold: the same limits the gateway sets for clients' requests."""

    max_count: int = 100
    max_bytes: int = 16 * 1024


class H1Response:
    """An answer from the pod: status and headers at once, the body as it arrives."""

    def __init__(self, conn: "H1Connection", *, head_request: bool) -> None:
        self._conn = conn
        self._head_request = head_request
        self._loop = conn.loop
        self.headers_ready: asyncio.Future[None] = self._loop.create_future()
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.content_type = b""
        self.chunked = False
        self.until_close = False
        self.complete = False
        self.error: Exception | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.watcher: asyncio.Future[None] | None = None  # watches the client while the headers are awaited
        self.timer: asyncio.TimerHandle | None = None
        self._settled = False  # released or closed: the connection may already serve another request

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.raw_headers:
            if key.lower() == name:
                return value
        return None

    def _header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            self.content_length = int(value) if value.strip().isdigit() else None
        elif lowered == b"content-type":
            self.content_type = value.split(b";")[0].strip().lower()
        elif lowered == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()

    def _headers_done(self, status: int) -> None:
        self.status = status
        chunked = self.chunked
        no_body = self._head_request or status in NO_BODY_STATUSES
        self.until_close = not no_body and not chunked and self.content_length is None
        if not self.headers_ready.done():
            self.headers_ready.set_result(None)
        if self._head_request:
            self._conn.keep_alive = False  # httptools cannot be told to skip a HEAD answer's declared body
            self._finish()

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._conn.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self.complete:
            return
        self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error)
            self.headers_ready.exception()  # retrieved here: the waiter may be gone already
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> bytes:
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._conn.resume_reading()
        return data

    async def next_chunk(self, idle_timeout: float) -> bytes | None:
        """The body bytes that arrived since the last call (waiting up to idle_timeout for some); None at the end."""
        while True:
            if self._chunks:
                return self._take()
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self._waiter = self._loop.create_future()
            async with asyncio.timeout(idle_timeout):
                await self._waiter

    def take_whole(self) -> bytes | None:
        """The whole body if it has all arrived already (None otherwise, or after an error)."""
        if not self.complete or self.error is not None:
            return None
        return self._take() if self._chunks else b""

    async def read(self, idle_timeout: float) -> bytes:
        parts = []
        while (chunk := await self.next_chunk(idle_timeout)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Done with the answer: the connection goes back to its pool if the exchange ended cleanly."""
        if not self._settled:
            self._settled = True
            self._conn.finished(self)

    def close(self) -> None:
        """Give up on the answer (the client left, or a timeout): the connection is closed, never reused.
        After `release` this does nothing: the connection may be serving someone else by then."""
        if not self._settled:
            self._settled = True
            self._conn.abort()


class H1Connection(asyncio.Protocol):
    def __init__(self, on_lost: Callable[["H1Connection"], None], limits: HeadLimits | None = None) -> None:
        # Looked up once per connection: on Python 3.11 every get_running_loop() is a getpid() syscall.
        self.loop = asyncio.get_running_loop()
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: H1Response | None = None
        self.closed = False
        self.keep_alive = True
        self.exchanges = 0
        self.idle_since = 0.0
        self._informational = False
        self._got_bytes = False
        self._limits = limits or HeadLimits()
        self._head_bytes = 0  # of the answer head so far (1xx heads included); None-like once the head is in
        self._header_count = 0
        self._reading_paused = False
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.pod = ""
        self.on_release: Callable[[H1Connection], None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # an answer nobody asked for: the connection can't be trusted
            self.abort()
            return
        self._got_bytes = True
        response = self.response
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.keep_alive = False
            cause = exc.__context__
            error = cause if isinstance(cause, UpstreamHeadersTooLarge) else None
            response._fail(error or UpstreamError(f"malformed answer from the pod: {exc}"))
            self.abort()
            return
        if not response.headers_ready.done():  # still in the head: bounded, whatever the pod keeps sending
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_bytes + STATUS_LINE_ALLOWANCE:
                self.keep_alive = False
                response._fail(UpstreamHeadersTooLarge(f"the pod's answer head exceeds {self._limits.max_bytes} bytes"))
                self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        response = self.response
        if response is not None and not response.complete:
            if response.headers_ready.done() and response.until_close and exc is None:
                response._finish()  # the body was delimited by the close
            elif self.exchanges and not self._got_bytes:
                response._fail(StaleConnection("the pod closed a kept-alive connection"))
            else:
                response._fail(UpstreamError("the pod closed the connection mid-answer"))
        self._wake_writer(UpstreamError("connection closed"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer(None)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self._header_count += 1
        if self._header_count > self._limits.max_count:
            raise UpstreamHeadersTooLarge(f"the pod's answer has more than {self._limits.max_count} headers")
        self.response._header(name, value)

    def on_headers_complete(self) -> None:
        assert self.response is not None
        status = self._parser.get_status_code()
        self._informational = 100 <= status < 200
        if self._informational:  # 100/103: not the answer; the real one follows on the same connection
            self.response.raw_headers.clear()
            self.response.content_length, self.response.content_type, self.response.chunked = None, b"", False
            return
        self.response._headers_done(status)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        if not self.response.complete:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        assert self.response is not None
        self.keep_alive = self.keep_alive and self._parser.should_keep_alive()
        self.response._finish()

    # flow control
    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def _wake_writer(self, error: Exception | None) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None) if error is None else drain.set_exception(error)

    async def _drained(self) -> None:
        if self.closed:
            raise UpstreamError("connection closed")
        if self._write_paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    # the exchange
    async def exchange(
        self,
        head: bytes,
        body: bytes | AsyncIterable[bytes] | None,
        *,
        head_request: bool,
        header_timeout: float | None = None,
        disconnected: Callable[[], Awaitable[Any]] | None = None,
    ) -> H1Response:
        """Send one request and wait for the answer's headers, at most `header_timeout` seconds (TimeoutError).
        A streamed body is written by a task of its own (the pod may answer before it has read it all); its
        failure, such as a client that is too slow, is raised here if it comes first. `disconnected` returns when
        the client has gone (ClientGone is raised then): it is awaited only if the headers are slow to come, and
        only once the body has been read, so a fast answer costs no task for it."""
        assert self.transport is not None
        if self.closed:  # closed by the pod since it was pooled: nothing was sent
            raise StaleConnection("the pod closed a kept-alive connection")
        response = self.response = H1Response(self, head_request=head_request)
        self._got_bytes = False
        self._head_bytes = self._header_count = 0
        # One timer handle for the whole wait (a stalled body upload included): asyncio.timeout() cost three times
        # as much, on every request. It first fires early to start watching the client, if asked to.
        first = header_timeout
        if disconnected is not None and (header_timeout is None or header_timeout > WATCH_CLIENT_AFTER):
            first = WATCH_CLIENT_AFTER
        if first is not None:
            deadline = None if header_timeout is None else response._loop.time() + header_timeout
            response.timer = response._loop.call_later(first, self._tick, response, deadline, disconnected)
        try:
            if body is None or isinstance(body, bytes):
                self.transport.write(head + body if body else head)
            else:
                self.transport.write(head)
                response.writer = asyncio.ensure_future(self._write_chunked(body))
                await asyncio.wait((response.writer, response.headers_ready), return_when=asyncio.FIRST_COMPLETED)
                if response.writer.done() and response.writer.exception() is not None:
                    raise response.writer.exception()  # type: ignore[misc]  # not None: checked on the line above
            await response.headers_ready
        except BaseException:
            self.abort()
            raise
        finally:
            if response.timer is not None:
                response.timer.cancel()
            if response.watcher is not None:
                response.watcher.cancel()
        self.exchanges += 1
        return response

    def _tick(
        self,
        response: H1Response,
        deadline: float | None,
        disconnected: Callable[[], Awaitable[Any]] | None,
    ) -> None:
        """The header wait's one timer: past the deadline, a timeout; before it, start watching the client (once
        nothing else reads from it) and wait on."""
        if response.headers_ready.done():
            return
        now = response._loop.time()
        if deadline is not None and now >= deadline:
            response._fail(TimeoutError("no answer headers in time"))
            return
        body_sent = response.writer is None or response.writer.done()
        if disconnected is not None and response.watcher is None and body_sent:
            response.watcher = asyncio.ensure_future(self._watch(response, disconnected))
            disconnected = None
        later = WATCH_CLIENT_AFTER if disconnected is not None else None
        if deadline is not None:
            later = min(later or deadline - now, deadline - now)
        if later is not None:
            response.timer = response._loop.call_later(later, self._tick, response, deadline, disconnected)

    @staticmethod
    async def _watch(response: H1Response, disconnected: Callable[[], Awaitable[Any]]) -> None:
        await disconnected()
        if not response.headers_ready.done():
            response._fail(ClientGone())

    async def _write_chunked(self, body: AsyncIterable[bytes]) -> None:
        assert self.transport is not None
        async for chunk in body:
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await self._drained()
        self.transport.write(b"0\r\n\r\n")

    def finished(self, response: H1Response) -> None:
        writer = response.writer
        body_sent = writer is None or (writer.done() and not writer.cancelled() and writer.exception() is None)
        if response.complete and response.error is None and self.keep_alive and body_sent and not self.closed:
            self.response = None
            self.resume_reading()
            if self.on_release is not None:
                self.on_release(self)
                return
        self.abort()

    def abort(self) -> None:
        self.keep_alive = False
        if self.response is not None and self.response.writer is not None:
            self.response.writer.cancel()
        if self.transport is not None and not self.closed:
            self.transport.abort()
