"""The corked uvicorn protocol: one send per loop turn, nothing held back from a stream, WebSockets unaffected."""

import asyncio
import hashlib
import inspect
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
import uvloop

from gateway.server.protocol import EXTRA_ACCEPTS, CorkedTransport, Protocols, protocols


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


def test_writes_of_one_loop_turn_go_out_as_one_send() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        corked = CorkedTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        corked.write(b"ok")
        assert raw.writes == [] and corked.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
        corked.write(b"next turn")
        await asyncio.sleep(0)
        assert raw.writes[1:] == [b"next turn"]
        assert corked.get_extra_info("peername") == "extra:peername"

    uvloop.run(scenario())


def test_close_sends_what_was_written_first_and_abort_drops_it() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        corked = CorkedTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"last words")
        corked.close()
        assert raw.writes == [b"last words"] and raw.closed
        await asyncio.sleep(0)
        assert raw.writes == [b"last words"]

        raw = RecordingTransport()
        corked = CorkedTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"never sent")
        corked.abort()
        await asyncio.sleep(0)
        assert raw.writes == [] and raw.aborted

    uvloop.run(scenario())


def test_writes_after_the_peer_went_away_are_dropped() -> None:
    async def scenario() -> None:
        raw = RecordingTransport()
        corked = CorkedTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"too late")
        raw.closed = True
        await asyncio.sleep(0)
        assert raw.writes == []

    uvloop.run(scenario())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": f"echo:{message['text']}"})
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def corked_server(keep_alive: int = 5) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=protocols(sock), ws="wsproto", lifespan="off", log_level="warning", timeout_keep_alive=keep_alive
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


def test_keep_alive_answers_arrive_whole_in_one_read() -> None:
    async def scenario() -> None:
        async with corked_server() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for path in (b"/one", b"/two"):
                writer.write(b"GET " + path + b" HTTP/1.1\r\nhost: x\r\n\r\n")
                data = await reader.read(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200") and body == path
            writer.close()

    uvloop.run(scenario())


def test_a_stream_is_not_held_back_until_it_ends() -> None:
    async def scenario() -> None:
        async with (
            corked_server() as port,
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/stream") as response,
        ):
            loop = asyncio.get_running_loop()
            started = loop.time()
            first = await response.content.readany()
            assert first == b"first" and loop.time() - started < 0.25
            assert await response.content.read() == b"second"

    uvloop.run(scenario())


def test_a_websocket_conversation_over_the_corked_protocol() -> None:
    async def scenario() -> None:
        async with (
            corked_server() as port,
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
        ):
            for text in ("hi", "there"):
                await ws.send_str(text)
                assert (await ws.receive()).data == f"echo:{text}"

    uvloop.run(scenario())


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout_and_a_busy_one_is_not() -> None:
    async def scenario() -> None:
        async with corked_server(keep_alive=1) as port:
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
            busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
            for reader, writer in ((idle_reader, idle_writer), (busy_reader, busy_writer)):
                writer.write(b"GET /first HTTP/1.1\r\nhost: x\r\n\r\n")
                assert (await reader.read(65536)).endswith(b"/first")
            loop = asyncio.get_running_loop()
            started = loop.time()
            while loop.time() - started < 2.6:  # past the timeout plus one sweep
                busy_writer.write(b"GET /busy HTTP/1.1\r\nhost: x\r\n\r\n")
                assert (await busy_reader.read(65536)).endswith(b"/busy")
                await asyncio.sleep(0.3)
            assert await asyncio.wait_for(idle_reader.read(), 0.5) == b""  # already closed by the server
            busy_writer.close()

    uvloop.run(scenario())


def test_a_server_that_shut_down_with_open_connections_leaves_the_next_one_serving_bursts() -> None:
    async def request(port: int, path: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET " + path + b" HTTP/1.1\r\nhost: x\r\n\r\n")
        data = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        return data

    async def scenario() -> None:
        async with corked_server() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /kept-open HTTP/1.1\r\nhost: x\r\n\r\n")
            assert (await reader.read(65536)).endswith(b"/kept-open")  # still open when the server stops
        async with corked_server() as port:
            answers = await asyncio.gather(*(request(port, b"/%d" % n) for n in range(64)))  # a burst at once
            assert [answer.endswith(b"/%d" % n) for n, answer in enumerate(answers)] == [True] * 64
        writer.close()

    uvloop.run(scenario())


# -- accepting a burst from the server's own socket -----------------------------------------------------------------


def _listening(host: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"echo:" + data)  # type: ignore[attr-defined]  # a BaseTransport is a Transport here


def test_waiting_connections_are_accepted_at_most_a_batch_at_a_time_and_served() -> None:
    async def scenario() -> None:
        listener = _listening("127.0.0.1")
        port = listener.getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(EXTRA_ACCEPTS + 3)]
        loop = asyncio.get_running_loop()
        server = Protocols(listener)
        assert server.accept_waiting(loop, Echo) == EXTRA_ACCEPTS
        assert server.accept_waiting(loop, Echo) == 3
        assert server.accept_waiting(loop, Echo) == 0  # nothing left: no error, no wait
        for number, (reader, writer) in enumerate(clients):
            writer.write(b"%d" % number)
            assert await asyncio.wait_for(reader.read(100), 2) == b"echo:%d" % number
            writer.close()
        listener.close()
        assert server.accept_waiting(loop, Echo) == 0  # a closed listener (uvicorn closes it when it stops)
        assert Protocols(None).accept_waiting(loop, Echo) == 0  # no socket given: uvloop's accepting only

    uvloop.run(scenario())


def test_nothing_more_is_accepted_for_a_server_that_shuts_down() -> None:
    async def scenario() -> None:
        listener = _listening("127.0.0.1")
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        loop = asyncio.get_running_loop()
        stopping, serving = Protocols(listener), Protocols(listener)
        stopping.stop()
        assert stopping.stopping and not serving.stopping
        assert stopping.accept_waiting(loop, Echo) == 0
        assert serving.accept_waiting(loop, Echo) == 1  # another server in the process
        writer.close()
        listener.close()

    uvloop.run(scenario())


def test_a_worker_process_gets_the_socket_and_none_of_this_process_state() -> None:
    listener = _listening("127.0.0.1")
    try:
        server = Protocols(listener)
        server.stop()
        make, args = server.__reduce__()  # how uvicorn's worker processes receive it (multiprocessing pickles it)
        copy = make(*args)
        assert copy.listener is listener and not copy.stopping  # the worker's own copy of the socket, fresh state
    finally:
        listener.close()


# -- what the protocol takes from uvicorn ----------------------------------------------------------------------------

# CorkedHttpTools overrides private methods of uvicorn's HttpToolsProtocol (and re-implements on_response_complete),
# and its sweep reads the request cycle's state. These are the sources it was written against (uvicorn 0.54.0): if
# one changes, re-read gateway/server.py against the new uvicorn, then update the digest here.
PINNED_UVICORN_SOURCES = {
    "HttpToolsProtocol.__init__": "4f08999410347141",
    "HttpToolsProtocol.connection_made": "6efb565ff3d36b91",
    "HttpToolsProtocol._start_asgi_task": "9c08c2571ae9b038",
    "HttpToolsProtocol.on_body": "dba9c32aeba35b6a",
    "HttpToolsProtocol.on_response_complete": "64e254f28e389e76",
    "HttpToolsProtocol._unset_keepalive_if_required": "00a6a4e47214e68e",
    "HttpToolsProtocol.shutdown": "d7351fa33f00d430",
    "HttpToolsProtocol.timeout_keep_alive_handler": "8b53bf5f2e202970",
    "RequestResponseCycle.__init__": "4d2f220910c33c12",
}


def test_the_uvicorn_internals_the_protocol_overrides_are_the_ones_it_was_written_against() -> None:
    from uvicorn.protocols.http import httptools_impl

    changed = []
    for name, digest in PINNED_UVICORN_SOURCES.items():
        owner, _, method = name.partition(".")
        source = inspect.getsource(getattr(getattr(httptools_impl, owner), method))
        if hashlib.sha256(source.encode()).hexdigest()[:16] != digest:
            changed.append(name)
    assert changed == [], f"uvicorn {uvicorn.__version__} changed what gateway/server.py overrides: {changed}"
