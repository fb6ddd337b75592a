"""Accepting waiting connections: the listening socket is found from a connection's local address, and what waits
in the accept queue is served without waiting for uvloop's one-per-loop-turn accept."""

import asyncio
import socket

import uvloop

from gateway import accepting
from gateway.accepting import EXTRA_ACCEPTS, accept_waiting, listener_for


def _listening(host: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def test_the_listener_is_found_by_the_address_connections_arrive_on() -> None:
    accepting._listeners.clear()
    exact, wildcard = _listening("127.0.0.1"), _listening("0.0.0.0")
    try:
        found = listener_for(("127.0.0.1", exact.getsockname()[1]))
        assert found is not None and found.getsockname() == exact.getsockname() and found.fileno() != exact.fileno()
        found_any = listener_for(("127.0.0.2", wildcard.getsockname()[1]))
        assert found_any is not None and found_any.getsockname() == wildcard.getsockname()
        unused = socket.socket()
        unused.bind(("127.0.0.1", 0))
        assert listener_for(("127.0.0.1", unused.getsockname()[1])) is None  # bound but not listening
        unused.close()
    finally:
        for sock in (exact, wildcard, *filter(None, accepting._listeners.values())):
            sock.close()
        accepting._listeners.clear()


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"echo:" + data)  # type: ignore[attr-defined]


def test_waiting_connections_are_accepted_at_most_a_batch_at_a_time_and_served() -> None:
    async def scenario() -> None:
        listener = _listening("127.0.0.1")
        port = listener.getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(EXTRA_ACCEPTS + 3)]
        loop = asyncio.get_running_loop()
        assert accept_waiting(listener, loop, Echo, server=1) == EXTRA_ACCEPTS
        assert accept_waiting(listener, loop, Echo, server=1) == 3
        assert accept_waiting(listener, loop, Echo, server=1) == 0  # nothing left: no error, no wait
        for number, (reader, writer) in enumerate(clients):
            writer.write(b"%d" % number)
            assert await asyncio.wait_for(reader.read(100), 2) == b"echo:%d" % number
            writer.close()
        listener.close()

    uvloop.run(scenario())


def test_nothing_more_is_accepted_for_a_server_that_shuts_down() -> None:
    async def scenario() -> None:
        listener = _listening("127.0.0.1")
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        loop = asyncio.get_running_loop()
        stopping, serving = object(), object()
        accepting.stop(id(stopping))
        assert accepting.stopped(id(stopping)) and not accepting.stopped(id(serving))
        assert accept_waiting(listener, loop, Echo, server=id(stopping)) == 0
        assert accept_waiting(listener, loop, Echo, server=id(serving)) == 1  # another server in the process
        writer.close()
        listener.close()

    uvloop.run(scenario())
