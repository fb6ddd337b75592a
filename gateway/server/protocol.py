"""The gateway's HTTP protocol for uvicorn, given as `uvicorn.Config(http=Protocols(listener))` (gateway.__main__).

uvicorn's httptools protocol, with two costs of every request taken out (measured in docs/decisions.md):
- It writes a response's head and its body with two `transport.write` calls, and uvloop sends each at once: two
  send() syscalls and two wake-ups of the client for every small answer. Here everything a connection writes during
  one turn of the event loop goes out in one send at the end of that turn (the ASGI spec lets a server hold the head
  until the first body message). A bare ASGI app: 40.6k → 51.1k req/s; a minimal proxy: 22.4k → 26.8k.
- It arms a timer handle after every response for the keep-alive timeout and cancels it on the next request. Here
  the response's end is a timestamp, and one sweep a second closes the connections idle for longer than the
  timeout (so they close within a second after it). A bare ASGI app: 21 → 18 µs of CPU per request.
The same sweep keeps the edge's deadlines for requests that never finish (gateway.server.deadlines): it reads each
connection's state as uvicorn keeps it, so a request that arrives whole costs nothing more.
And each accepted connection accepts up to EXTRA_ACCEPTS more waiting ones from the server's listening socket, which
`python -m gateway` creates and hands to uvicorn (see `Protocols`).

This subclasses uvicorn's HttpToolsProtocol and overrides some of its private methods (`_start_asgi_task`,
`_unset_keepalive_if_required`, and re-implements `on_response_complete`); the sweep reads its cycle's state.
`gateway/tests/test_server.py` pins the source of every uvicorn method this relies on, so a uvicorn upgrade that
changes one fails there first.
"""

import asyncio
import socket
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import metrics
from gateway.errors import error_body
from gateway.limits import admission
from gateway.server.deadlines import BODY, FIRST_REQUEST, HEAD, EdgeDeadlines, TimedFlowControl, Watch


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
EXTRA_ACCEPTS = 16  # per accepted connection: a burst of a thousand drains in a few loop turns


def protocols(listener: socket.socket | None) -> type[asyncio.Protocol]:
    """`uvicorn.Config(http=protocols(listener))`: uvicorn calls its `http` the way it calls a protocol class."""
    return cast("type[asyncio.Protocol]", Protocols(listener))


class Protocols:
    """The protocol factory of one server (`uvicorn.Config(http=Protocols(listener))`) and what its connections share:
    the listening socket, the sweep of its connections, the loop-lag probe, and whether it is shutting down.

    Accepting a burst: libuv (under uvloop) accepts one connection per turn of the event loop, and a loop busy with a
    thousand connections turns every few tens of milliseconds, so new connections waited seconds in the kernel's
    queue (docs/decisions.md). So each accepted connection accepts up to EXTRA_ACCEPTS more from `listener`, the
    socket uvicorn serves (it closes it when it stops). With `listener` None uvloop's own accepting is all there is.
    In uvicorn's worker processes each gets its own copy of this object, with the socket passed to it.
    """

    def __init__(self, listener: socket.socket | None = None) -> None:
        self.listener = listener
        self.stopping = False
        self._sweeper: asyncio.Task[None] | None = None
        self._lag_probe: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[Any]] = set()

    def __reduce__(self) -> tuple[type["Protocols"], tuple[socket.socket | None]]:
        return Protocols, (self.listener,)  # to a worker process: the socket, not this process's tasks

    def __call__(
        self,
        *,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> "CorkedHttpTools":
        """What uvicorn calls for each connection (its `create_protocol`)."""
        return CorkedHttpTools(self, config=config, server_state=server_state, app_state=app_state, _loop=_loop)

    def started(self, protocol: "CorkedHttpTools") -> None:
        """A connection was made: start the sweep and the lag probe once, accept what waits."""
        loop = protocol.loop
        if self._sweeper is None or self._sweeper.done():
            deadlines = EdgeDeadlines.from_settings()
            self._sweeper = loop.create_task(_sweep(protocol.connections, protocol.timeout_keep_alive, deadlines))
        if self._lag_probe is None or self._lag_probe.done():
            self._lag_probe = loop.create_task(admission.probe_lag())
        self.accept_waiting(loop, protocol.sibling)

    def accept_waiting(self, loop: asyncio.AbstractEventLoop, protocol_factory: Any) -> int:
        """Accept up to EXTRA_ACCEPTS waiting connections and serve each with a new protocol; how many were taken."""
        taken = 0
        while self.listener is not None and taken < EXTRA_ACCEPTS and not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # BlockingIOError: nothing is waiting (or the listener is closed)
                break
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(protocol_factory, conn))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
            taken += 1
        return taken

    def stop(self) -> None:
        """The server shuts down (uvicorn shuts every connection down when it stops serving): accept nothing more.
        The sweep goes on: the connections still draining keep their deadlines."""
        self.stopping = True


def _timeout_response(message: str) -> bytes:
    body = error_body("request_timeout", message)
    head = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
    return head + b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body


LINGER_SECONDS = 2.0  # after a 408, what the client still sends is read and dropped this long before closing


class _DropEverything:
    """The parser of a connection that was answered 408 while the client may still be sending (lingering close)."""

    def feed_data(self, data: bytes) -> None:
        pass


TIMEOUT_RESPONSES = {
    FIRST_REQUEST: _timeout_response("the request head was not received in time"),
    HEAD: _timeout_response("the request head was not received in time"),
    BODY: _timeout_response("the request body arrived too slowly"),
}


async def _sweep(connections: set[Any], keep_alive: float, deadlines: EdgeDeadlines) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        now = loop.time()
        idle_deadline = now - keep_alive
        for protocol in list(connections):
            if not isinstance(protocol, CorkedHttpTools):
                continue  # a WebSocket's protocol after the upgrade
            idle_since = protocol.idle_since
            if idle_since is None:
                protocol.keep_deadlines(now, deadlines)
            elif idle_since < idle_deadline:
                protocol.idle_since = None
                protocol.timeout_keep_alive_handler()


class CorkedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol over a CorkedTransport (also after a WebSocket upgrade, which hands it on),
    its keep-alive timeout and the edge's deadlines kept by a sweep."""

    idle_since: float | None = None
    received = 0  # body bytes received on this connection
    lingering_until = 0.0
    flow: TimedFlowControl

    def __init__(self, protocols: Protocols, **uvicorn_arguments: Any) -> None:
        super().__init__(**uvicorn_arguments)
        self.protocols = protocols

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn types it BaseTransport
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]  # duck-typed transport
        self.flow = TimedFlowControl(self.transport, self.loop.time)
        self.watch = Watch(FIRST_REQUEST, None, self.loop.time())
        if self.protocols.stopping:  # accepted by us just as the server began to shut down
            self.shutdown()
            return
        self.protocols.started(self)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if admission.PROCESS.full() and cycle.scope["path"] not in admission.EXEMPT_PATHS:
            self._refuse_overloaded(cycle)
            return
        super()._start_asgi_task(cycle, app)

    def _refuse_overloaded(self, cycle: Any) -> None:
        """The process is at its bound (gateway.limits.admission): the app's 503, written here without starting the app,
        at a fraction of its cost (a body still to come is read and dropped, as for any answered request)."""
        metrics.shed.inc("server")
        metrics.requests_total.inc("none", "503")
        cycle.response_started = cycle.response_complete = True
        if cycle.keep_alive and cycle.scope["method"] != "HEAD":  # after HEAD a body would be misread: close
            self.transport.write(admission.OVERLOADED_RESPONSE)
            self.on_response_complete()
        else:
            self.transport.write(admission.OVERLOADED_RESPONSE_CLOSE)
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.received += len(body)
        super().on_body(body)

    def keep_deadlines(self, now: float, deadlines: EdgeDeadlines) -> None:
        """Cut this connection if the request it is receiving is overdue (gateway.server.deadlines)."""
        cycle, watch = self.cycle, self.watch
        if self.transport.is_closing():
            return
        if self.lingering_until:
            if now > self.lingering_until:
                self.transport.close()
            return
        if cycle is None:  # no request head complete yet: watched since the connection was made
            if watch.overdue(FIRST_REQUEST, None, now, deadlines.first_request_seconds):
                self._cut(FIRST_REQUEST, now, answer=self.scope is not None)  # nothing sent at all: just closed
        elif cycle.scope is not self.scope:  # a later request's head is coming in
            if watch.overdue(HEAD, self.scope, now, deadlines.head_seconds):
                self._cut(HEAD, now, answer=cycle.response_complete)
        elif cycle.more_body:  # its body is coming in (or the rest of one that was answered without it)
            if cycle.waiting_for_100_continue:
                watch.forget()  # the client waits for our "100 Continue": its time starts when the app asks
            elif watch.overdue(
                BODY,
                cycle,
                now,
                deadlines.body_grace_seconds,
                received=self.received,
                paused=self.flow.paused_seconds(now),
                min_rate=deadlines.body_min_rate,
            ):
                self._cut(BODY, now, answer=not cycle.response_started)
        elif cycle.response_complete:  # answered, not idle: bytes came that began no request (CRLFs, junk)
            if watch.overdue(HEAD, cycle, now, deadlines.head_seconds):
                self._cut(HEAD, now, answer=False)
        else:
            watch.forget()  # the request is the app's now

    def _cut(self, phase: str, now: float, *, answer: bool) -> None:
        metrics.edge_timeouts.labels(phase).inc()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() returns http.disconnect and its sends are dropped
            cycle.message_event.set()
        if not answer:
            self.transport.close()
            return
        # Closing at once while the client is still sending would reset the connection and could destroy the answer
        # before the client reads it: end our side, then read and drop what still comes for a while (as nginx's
        # lingering close does); the sweep closes the connection after LINGER_SECONDS.
        self.transport.write(TIMEOUT_RESPONSES[phase])
        self.transport.write_eof()
        self.parser = _DropEverything()  # type: ignore[assignment]  # stands in for httptools' parser
        self.flow.resume_reading()
        self.lingering_until = now + LINGER_SECONDS

    def shutdown(self) -> None:
        self.protocols.stop()  # uvicorn shuts every connection down when it stops serving
        super().shutdown()

    def sibling(self) -> "CorkedHttpTools":
        """A protocol for another connection of the same server."""
        return type(self)(
            self.protocols,
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )

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
