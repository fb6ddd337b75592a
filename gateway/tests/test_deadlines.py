"""The edge's deadlines: the rule on its own, then a real uvicorn server on our protocol, driven with raw bytes."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import uvloop

from gateway import metrics
from gateway.server import protocol as server
from gateway.server.deadlines import BODY, FIRST_REQUEST, HEAD, TimedFlowControl, Watch
from gateway.server.protocol import protocols


def test_a_part_is_overdue_after_its_allowance_counted_from_when_it_was_first_seen() -> None:
    watch = Watch(FIRST_REQUEST, None, since=100.0)
    assert not watch.overdue(FIRST_REQUEST, None, 109.0, 10.0)
    assert watch.overdue(FIRST_REQUEST, None, 110.5, 10.0)
    head = object()
    assert not watch.overdue(HEAD, head, 111.0, 10.0)  # a new part: watched from now
    assert not watch.overdue(HEAD, head, 120.0, 10.0)
    assert watch.overdue(HEAD, head, 121.5, 10.0)
    assert not watch.overdue(HEAD, object(), 122.0, 10.0)  # another request's head
    watch.forget()
    assert not watch.overdue(HEAD, head, 200.0, 10.0)  # the same head after a pause in watching: from now


def test_a_body_earns_a_second_per_min_rate_bytes_and_paused_time_is_not_counted() -> None:
    request = object()
    watch = Watch(None, None, since=0.0)
    assert not watch.overdue(BODY, request, 0.0, 10.0, received=500, min_rate=1000)
    # a steady 1,000 bytes a second keeps up for ever
    assert not watch.overdue(BODY, request, 60.0, 10.0, received=500 + 60_000, min_rate=1000)
    # a drip: 20 bytes in 11 s earn 0.02 s
    drip = Watch(None, None, since=0.0)
    drip.overdue(BODY, request, 0.0, 10.0, received=0, min_rate=1000)
    assert drip.overdue(BODY, request, 11.0, 10.0, received=20, min_rate=1000)
    # the same 11 s of which the server held reading paused for 5: not overdue
    paused = Watch(None, None, since=0.0)
    paused.overdue(BODY, request, 0.0, 10.0, received=0, paused=3.0, min_rate=1000)
    assert not paused.overdue(BODY, request, 11.0, 10.0, received=20, paused=8.0, min_rate=1000)


class PausableTransport:
    def __init__(self) -> None:
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def test_timed_flow_control_adds_up_the_paused_time() -> None:
    now = [10.0]
    transport = PausableTransport()
    flow = TimedFlowControl(transport, lambda: now[0])  # type: ignore[arg-type]
    flow.resume_reading()  # not paused: nothing changes
    assert flow.paused_seconds(10.0) == 0.0
    flow.pause_reading()
    assert not transport.reading
    now[0] = 12.0
    assert flow.paused_seconds(12.0) == 2.0
    flow.pause_reading()  # already paused: still timed from the first pause
    now[0] = 13.0
    flow.resume_reading()
    assert transport.reading and flow.paused_seconds(20.0) == 3.0


# The server's deadlines in these tests: scaled down so each test takes a second or two.
DEADLINES = {
    "GATEWAY_FIRST_REQUEST_TIMEOUT_SECONDS": 0.6,
    "GATEWAY_HEADER_TIMEOUT_SECONDS": 0.6,
    "GATEWAY_BODY_TIMEOUT_SECONDS": 0.6,
    "GATEWAY_BODY_MIN_BYTES_PER_SECOND": 1000.0,
}


@pytest.fixture(autouse=True)
def short_deadlines(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in DEADLINES.items():
        setattr(settings, name, value)
    monkeypatch.setattr(server, "SWEEP_SECONDS", 0.1)
    yield


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body (after `?wait=` seconds, if given) and answers with its length."""
    if scope["query_string"].startswith(b"wait="):
        await asyncio.sleep(float(scope["query_string"][5:]))
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def served(asgi_app: Any = app) -> AsyncIterator[int]:
    """A real uvicorn server on our protocol, on a loopback port (yielded)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(asgi_app, http=protocols(sock), lifespan="off", log_level="warning", timeout_keep_alive=5)
    uv = uvicorn.Server(config)
    task = asyncio.ensure_future(uv.serve(sockets=[sock]))
    while not uv.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        uv.should_exit = True
        await task


def cuts(phase: str) -> float:
    return metrics.registry.get_sample_value("percolate_gateway_edge_timeouts_total", {"phase": phase}) or 0.0


async def read_until_closed(reader: asyncio.StreamReader, limit: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(), limit)  # read() returns at EOF: the server closed


async def drip(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send `data` a byte at a time, `every` seconds apart, until done or the server closes."""
    for i in range(len(data)):
        if writer.is_closing():
            return
        try:
            writer.write(data[i : i + 1])
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


def status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def test_a_connection_that_sends_nothing_is_closed_after_the_first_request_deadline() -> None:
    async def scenario() -> None:
        before = cuts(FIRST_REQUEST)
        async with served() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = asyncio.get_running_loop().time()
            assert await read_until_closed(reader) == b""  # closed without an answer: there was no request
            assert 0.5 < asyncio.get_running_loop().time() - started < 2.0
            writer.close()
        assert cuts(FIRST_REQUEST) == before + 1

    uvloop.run(scenario())


def test_a_first_request_head_sent_slowly_is_answered_408_and_closed() -> None:
    async def scenario() -> None:
        before = cuts(FIRST_REQUEST)
        async with served() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sender = asyncio.ensure_future(drip(writer, b"GET / HTTP/1.1\r\nhost: example\r\nx-slow: yes\r\n\r\n", 0.1))
            answer = await read_until_closed(reader)
            assert not sender.done()  # cut before the head was whole
            sender.cancel()
            assert status_and_error(answer) == (408, "request_timeout")
            writer.close()
        assert cuts(FIRST_REQUEST) == before + 1

    uvloop.run(scenario())


def test_a_later_request_head_sent_slowly_is_answered_408_and_closed() -> None:
    async def scenario() -> None:
        before = cuts(HEAD)
        async with served() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nhost: example\r\n\r\n")
            first = await reader.readuntil(b"\r\n\r\n")
            assert first.startswith(b"HTTP/1.1 200") and await reader.readexactly(1) == b"0"
            sender = asyncio.ensure_future(drip(writer, b"GET / HTTP/1.1\r\nhost: example\r\nx-slow: yes\r\n\r\n", 0.1))
            answer = await read_until_closed(reader)
            sender.cancel()
            assert status_and_error(answer) == (408, "request_timeout")
            writer.close()
        assert cuts(HEAD) == before + 1

    uvloop.run(scenario())


def test_a_dripping_body_is_answered_408_and_the_app_sees_the_client_gone() -> None:
    async def scenario() -> None:
        before = cuts(BODY)
        async with served() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nhost: example\r\ncontent-length: 100\r\n\r\n")
            sender = asyncio.ensure_future(drip(writer, b"x" * 100, 0.1))  # 10 bytes a second
            answer = await read_until_closed(reader)
            assert not sender.done()
            sender.cancel()
            assert status_and_error(answer) == (408, "request_timeout")
            writer.close()
        assert cuts(BODY) == before + 1

    uvloop.run(scenario())


async def upload(port: int, body: bytes, *, chunk: int, every: float, target: bytes = b"/", head: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST " + target + b" HTTP/1.1\r\nhost: example\r\ncontent-length: %d\r\n" % len(body) + head)
    writer.write(b"\r\n")
    if head:  # Expect: 100-continue: the body only after the server asks for it
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
    for offset in range(0, len(body), chunk):
        writer.write(body[offset : offset + chunk])
        await writer.drain()
        await asyncio.sleep(every)
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    payload = await reader.readexactly(length)
    writer.close()
    return answer.split()[1] + b" " + payload


def test_a_slow_but_steady_upload_passes() -> None:
    async def scenario() -> None:
        before = cuts(BODY)
        async with served() as port:
            # 2,000 bytes a second for 2 s: over three times the grace, above the minimum rate all along
            assert await upload(port, b"y" * 4000, chunk=200, every=0.1) == b"200 4000"
        assert cuts(BODY) == before

    uvloop.run(scenario())


def test_time_the_server_held_reading_paused_does_not_count_against_the_client() -> None:
    async def scenario() -> None:
        before = cuts(BODY)
        async with served() as port:
            # the app reads nothing for 1.5 s: past 64 KiB buffered the server pauses reading; the rest waits
            body = b"z" * 200_000
            assert await upload(port, body, chunk=len(body), every=0, target=b"/?wait=1.5") == b"200 200000"
        assert cuts(BODY) == before

    uvloop.run(scenario())


def test_a_client_waiting_for_100_continue_is_not_timed_until_it_is_asked() -> None:
    async def scenario() -> None:
        before = cuts(BODY)
        async with served() as port:
            answer = await upload(
                port, b"w" * 10, chunk=10, every=0, target=b"/?wait=1.5", head=b"expect: 100-continue\r\n"
            )
            assert answer == b"200 10"
        assert cuts(BODY) == before

    uvloop.run(scenario())
