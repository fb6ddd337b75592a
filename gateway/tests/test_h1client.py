"""The pod connection's HTTP/1.1 exchange, against raw sockets that answer exactly what each test scripts.

Every test runs on asyncio's loop and on uvloop (which the gateway runs on in production)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from gateway.pods.h1client import (
    HIGH_WATER,
    ClientGone,
    HeadLimits,
    StaleConnection,
    UpstreamConnectError,
    UpstreamError,
    UpstreamHeadersTooLarge,
)
from gateway.pods.h1pool import H1Pool, request_head

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        if request.param == "uvloop":
            return uvloop.run(coro)
        return asyncio.run(coro)

    return runner


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            head += await reader.readexactly(int(line.split(b":")[1]))
    return head


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving(handler: Handler, **pool_options: Any) -> AsyncIterator[tuple[str, H1Pool]]:
    """A scripted pod and a pool to reach it, both closed afterwards."""
    server, pod = await serve(handler)
    pool = H1Pool(connect_timeout=1, **pool_options)
    try:
        yield pod, pool
    finally:
        await pool.close()
        server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def answer_ok_on_every_request(connections: list[asyncio.StreamWriter]) -> Handler:
    """A pod that keeps each connection open and answers OK to every request on it; records its connections."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)

    return handler


def test_the_request_head_carries_host_framing_and_the_given_headers() -> None:
    head = request_head(b"POST", b"/v1/x?a=1", "10.0.0.1:8000", [(b"x-request-id", b"r1")], 5)
    assert head == b"POST /v1/x?a=1 HTTP/1.1\r\nhost: 10.0.0.1:8000\r\nx-request-id: r1\r\ncontent-length: 5\r\n\r\n"
    assert b"content-length" not in request_head(b"GET", b"/", "p:1", [], 0)
    assert b"transfer-encoding: chunked" in request_head(b"POST", b"/", "p:1", [], None)


def test_a_kept_alive_connection_serves_the_next_request(run) -> None:
    connections: list[asyncio.StreamWriter] = []
    handler = answer_ok_on_every_request(connections)

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            for _ in range(3):
                response = await pool.request(b"GET", pod, b"/", [], None)
                assert (response.status, response.content_length) == (200, 2)
                assert response.content_type == b"application/json"
                assert await response.read(1) == b"{}"
                response.release()
                response.close()  # after release: a no-op, the connection is the pool's again
            assert len(connections) == 1 and pool.idle_count(pod) == 1

    run(scenario())


def test_a_chunked_answer_streams_chunk_by_chunk_and_ends(run) -> None:
    step = asyncio.Event

    async def scenario() -> None:
        go = step()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
            writer.write(b"5\r\nfirst\r\n")
            await go.wait()
            writer.write(b"6\r\nsecond\r\n0\r\n\r\n")

        async with serving(handler) as (pod, pool):
            response = await pool.request(b"GET", pod, b"/stream", [], None)
            assert response.content_type == b"text/event-stream" and response.content_length is None
            assert await response.next_chunk(1) == b"first"  # before the rest exists: nothing is buffered whole
            go.set()
            assert await response.next_chunk(1) == b"second"
            assert await response.next_chunk(1) is None
            response.release()
            assert pool.idle_count(pod) == 1

    run(scenario())


def test_a_body_delimited_by_the_close_is_whole_and_the_connection_is_not_reused(run) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        writer.close()

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            response = await pool.request(b"GET", pod, b"/", [], None)
            assert await response.read(1) == b"until the end"
            response.release()
            assert pool.idle_count(pod) == 0

    run(scenario())


def test_informational_answers_are_skipped_and_head_answers_have_no_body(run) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" + OK)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")  # HEAD: length declared, no body

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            response = await pool.request(b"GET", pod, b"/", [], None)
            assert response.status == 200 and response.header(b"link") is None
            assert await response.read(1) == b"{}"
            response.release()
            head = await pool.request(b"HEAD", pod, b"/", [], None)
            assert head.status == 200 and head.content_length == 100
            assert await head.read(1) == b""
            head.release()

    run(scenario())


def test_a_streamed_request_body_goes_up_chunked(run) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        received.append(body)
        writer.write(OK)

    async def scenario() -> None:
        async def body():
            for part in (b"one,", b"", b"two,", b"x" * 300_000):
                yield part

        async with serving(handler) as (pod, pool):
            response = await pool.request(b"POST", pod, b"/", [], body())
            assert await response.read(1) == b"{}"
            response.release()
            assert received == [b"one,two," + b"x" * 300_000]
            assert pool.idle_count(pod) == 1

    run(scenario())


def test_a_failing_request_body_is_raised_and_the_connection_dropped(run) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def scenario() -> None:
        async def body():
            yield b"start"
            raise ValueError("client too slow")

        async with serving(handler) as (pod, pool):
            with pytest.raises(ValueError, match="too slow"):
                await pool.request(b"POST", pod, b"/", [], body())
            assert pool.idle_count(pod) == 0

    run(scenario())


def test_a_slow_reader_pauses_the_pod_instead_of_buffering_everything(run) -> None:
    total = 8 * HIGH_WATER

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        for _ in range(total // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            response = await pool.request(b"GET", pod, b"/", [], None)
            await asyncio.sleep(0.3)  # the pod would send everything now if nothing held it back
            assert response._buffered <= HIGH_WATER + 65536 * 4
            got = 0
            while (chunk := await response.next_chunk(1)) is not None:
                got += len(chunk)
            assert got == total
            response.release()

    run(scenario())


def test_a_malformed_answer_or_a_close_mid_answer_is_an_upstream_error(run) -> None:
    answers = iter([b"SPDY/9 what\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(next(answers))
        writer.close()

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            with pytest.raises(UpstreamError, match="malformed"):
                await pool.request(b"GET", pod, b"/", [], None)
            response = await pool.request(b"GET", pod, b"/", [], None)
            with pytest.raises(UpstreamError, match="mid-answer"):
                await response.read(1)
            response.close()
            assert pool.idle_count(pod) == 0

    run(scenario())


def test_a_refused_connection_is_a_connect_error(run) -> None:
    async def scenario() -> None:
        server, pod = await serve(lambda r, w: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamConnectError):
            await H1Pool(connect_timeout=1).request(b"GET", pod, b"/", [], None)

    run(scenario())


def test_a_stale_kept_alive_connection_is_retried_only_for_idempotent_requests(run) -> None:
    served: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append((await read_request(reader)).split(b" ")[0])
        writer.write(OK)
        await writer.drain()
        await reader.read(1)  # the next request arrives ...
        writer.transport.abort()  # ... and the pod drops the connection without answering

    async def scenario() -> None:
        async with serving(handler) as (pod, pool):
            for method in (b"GET", b"POST"):
                first = await pool.request(method, pod, b"/", [], b"" if method == b"POST" else None)
                await first.read(1)
                first.release()
                if method == b"GET":
                    again = await pool.request(b"GET", pod, b"/", [], None)  # stale → sent again on a new connection
                    assert again.status == 200
                    again.close()
                else:
                    with pytest.raises(StaleConnection):  # may have been processed: never sent twice
                        await pool.request(b"POST", pod, b"/", [], b"{}")
            assert served == [b"GET", b"GET", b"POST"]

    run(scenario())


def test_idle_connections_older_than_the_keepalive_are_not_reused(run) -> None:
    connections: list[asyncio.StreamWriter] = []
    handler = answer_ok_on_every_request(connections)

    async def scenario() -> None:
        async with serving(handler, keepalive_seconds=0.05) as (pod, pool):
            for _ in range(2):
                response = await pool.request(b"GET", pod, b"/", [], None)
                await response.read(1)
                response.release()
                await asyncio.sleep(0.1)
            assert len(connections) == 2

    run(scenario())


def endless(piece: bytes, sent: list[int], closed: asyncio.Event, start: bytes = b"HTTP/1.1 200 OK\r\n") -> Handler:
    """A pod that answers a head that never ends: `start`, then `piece` over and over, counting what it got out."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(start)
        try:
            for _ in range((64 << 20) // len(piece)):  # 64 MiB, as the pod of the issue sent
                writer.write(piece)
                sent[0] += len(piece)
                await writer.drain()
        except (ConnectionError, RuntimeError):
            closed.set()

    return handler


@pytest.mark.parametrize(
    "piece",
    [
        b"x" * 65536,  # one header line that never ends (1 MiB and on)
        b"x-h: v\r\n" * 8192,  # thousands of headers
        b"x-big: " + b"v" * 65536 + b"\r\n",  # header lines of 64 KiB each
    ],
    ids=["endless-line", "many-headers", "huge-lines"],
)
def test_an_answer_head_past_the_header_limits_is_dropped_unread(run, piece: bytes) -> None:
    sent = [0]

    async def scenario() -> None:
        closed = asyncio.Event()
        limits = HeadLimits(max_count=100, max_bytes=16 * 1024)
        async with serving(endless(piece, sent, closed), head_limits=limits) as (pod, pool):
            with pytest.raises(UpstreamHeadersTooLarge):
                await pool.request(b"GET", pod, b"/", [], None, header_timeout=10)
            await asyncio.wait_for(closed.wait(), 5)  # the connection was dropped: the pod can send no more
            assert pool.idle_count(pod) == 0
        # What the pod got out before the drop: the limit, one read, and the kernel's socket buffers at most.
        assert sent[0] < 8 << 20

    run(scenario())


def test_endless_informational_answers_are_bounded_too(run) -> None:
    sent = [0]

    async def scenario() -> None:
        closed = asyncio.Event()
        informational = endless(b"HTTP/1.1 100 Continue\r\nx: y\r\n\r\n", sent, closed, start=b"")
        async with serving(informational) as (pod, pool):
            with pytest.raises(UpstreamError):
                await pool.request(b"GET", pod, b"/", [], None, header_timeout=10)
            await asyncio.wait_for(closed.wait(), 5)

    run(scenario())


def test_an_answer_head_within_the_limits_passes_with_its_body_in_the_same_read(run) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(90))  # ~10 KiB, 90 headers
    body = b"b" * 200_000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n" + headers + b"content-length: %d\r\n\r\n" % len(body) + body)

    async def scenario() -> None:
        async with serving(handler, head_limits=HeadLimits(max_count=100, max_bytes=16 * 1024)) as (pod, pool):
            response = await pool.request(b"GET", pod, b"/", [], None)
            assert len(response.raw_headers) == 91 and await response.read(1) == body
            response.release()

    run(scenario())


def test_a_client_that_leaves_before_the_answer_headers_frees_the_pod_connection_at_once(run) -> None:
    async def scenario() -> None:
        pod_saw_close = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            await reader.read()  # never answers; returns when the gateway closes the connection
            pod_saw_close.set()

        gone = asyncio.Event()
        async with serving(handler) as (pod, pool):
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, gone.set)
            started = loop.time()
            with pytest.raises(ClientGone):
                await pool.request(b"POST", pod, b"/", [], b"{}", header_timeout=30, disconnected=gone.wait)
            assert loop.time() - started < 2  # not the 30 s header timeout
            await asyncio.wait_for(pod_saw_close.wait(), 2)
            assert pool.idle_count(pod) == 0

    run(scenario())


def test_the_client_is_watched_only_once_a_streamed_body_has_been_sent(run) -> None:
    """While the body is still being read from the client, the body reader owns the client's messages."""
    watched_while_sending: list[bool] = []

    async def scenario() -> None:
        sending = True

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"0\r\n\r\n")
            await asyncio.sleep(0.3)
            writer.write(OK)

        async def body():
            nonlocal sending
            for _ in range(3):
                yield b"chunk"
                await asyncio.sleep(0.1)
            sending = False

        async def disconnected() -> None:
            watched_while_sending.append(sending)
            await asyncio.Event().wait()

        async with serving(handler) as (pod, pool):
            response = await pool.request(b"POST", pod, b"/", [], body(), header_timeout=5, disconnected=disconnected)
            assert response.status == 200
            response.release()

    run(scenario())
    assert watched_while_sending == [False]


def test_a_fast_answer_never_watches_the_client(run) -> None:
    calls: list[int] = []

    async def disconnected() -> None:
        calls.append(1)

    async def scenario() -> None:
        async with serving(answer_ok_on_every_request([])) as (pod, pool):
            for _ in range(20):
                response = await pool.request(b"GET", pod, b"/", [], None, header_timeout=5, disconnected=disconnected)
                await response.read(1)
                response.release()

    run(scenario())
    assert calls == []
