"""The gateway's HTTP protocol for uvicorn: `uvicorn gateway.asgi:application --http gateway.server:CorkedHttpTools`.

uvicorn's httptools protocol, with two costs of every request taken out (measured in docs/decisions.md):
- It writes a response's head and its body with two `transport.write` calls, and uvloop sends each at once: two
  send() syscalls and two wake-ups of the client for every small answer. Here everything a connection writes during
  one turn of the event loop goes out in one send at the end of that turn (the ASGI spec lets a server hold the head
  until the first body message). A bare ASGI app: 40.6k → 51.1k req/s; a minimal proxy: 22.4k → 26.8k.
- It arms a timer handle after every response for the keep-alive timeout and cancels it on the next request. Here
  the response's end is a timestamp, and one sweep a second closes the connections idle for longer than the
  timeout (so they close within a second after it). A bare ASGI app: 21 → 18 µs of CPU per request.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import accepting


class CorkedTransport:
    """A transport whose writes are gathered until the end of the current loop turn, then sent as one."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(bytes(data) if not isinstance(data, bytes) else data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        self._scheduled = False
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(chunk) for chunk in self._pending)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # what was written before close still goes out, as with a plain transport
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else (is_closing, pause_reading, set_protocol, ...)
        return getattr(self._transport, name)


SWEEP_SECONDS = 1.0
_sweepers: dict[int, "asyncio.Task[None]"] = {}  # one per server, by its set of connections


async def _close_idle(connections: set[Any], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        deadline = loop.time() - timeout
        for protocol in list(connections):
            idle_since = getattr(protocol, "idle_since", None)
            if idle_since is not None and idle_since < deadline:
                protocol.idle_since = None
                protocol.timeout_keep_alive_handler()


class CorkedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol over a CorkedTransport (also after a WebSocket upgrade, which hands it on),
    its keep-alive timeout kept by a sweep."""

    idle_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        if accepting.stopped(id(self.connections)):  # accepted by us just as the server began to shut down
            self.shutdown()
            return
        listener = accepting.listener_for(self.server) if self.server and self.server[1] is not None else None  # type: ignore[arg-type]
        if listener is not None:
            accepting.accept_waiting(listener, self.loop, self._sibling, server=id(self.connections))
        key = id(self.connections)
        sweeper = _sweepers.get(key)
        if sweeper is None or sweeper.done():
            task = _sweepers[key] = self.loop.create_task(_close_idle(self.connections, self.timeout_keep_alive))
            task.add_done_callback(lambda _: _sweepers.pop(key, None))

    def shutdown(self) -> None:
        accepting.stop(id(self.connections))  # uvicorn shuts every connection down when it stops serving
        super().shutdown()

    def _sibling(self) -> "CorkedHttpTools":
        """A protocol for another connection of the same server."""
        return type(self)(config=self.config, server_state=self.server_state, app_state=self.app_state, _loop=self.loop)

    def on_response_complete(self) -> None:
        # uvicorn's own, but for the keep-alive timer: the sweep reads `idle_since` instead.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_since = self.loop.time()

    def _unset_keepalive_if_required(self) -> None:
        self.idle_since = None
        super()._unset_keepalive_if_required()
