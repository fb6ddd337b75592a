"""The gateway's HTTP protocol for uvicorn: `uvicorn gateway.asgi:application --http gateway.server:CorkedHttpTools`.

uvicorn's httptools protocol writes a response's head and its body with two separate `transport.write` calls, and
uvloop sends each at once: two send() syscalls, two TCP segments and two wake-ups of the client for every small
answer. Here everything a connection writes during one turn of the event loop goes out in a single send at the end
of that turn (the ASGI spec lets a server hold the head until the first body message). Measured in bench.gateway's
setup: a bare ASGI app 40.6k → 51.1k req/s, a minimal proxy 22.4k → 26.8k (docs/decisions.md).
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class CorkedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol over a CorkedTransport (also after a WebSocket upgrade, which hands it on)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
