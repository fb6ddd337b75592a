"""Accepting waiting connections faster than uvloop does on its own.

libuv (under uvloop) accepts one connection per turn of the event loop. A gateway busy with a thousand connections
turns its loop every few tens of milliseconds, so a burst of new connections waits in the kernel's accept queue for
seconds while their first requests are already sent: a bare uvicorn app at 1,000 connections showed the queue
draining at ~150 connections a second and a p99 of 4-6 s (docs/decisions.md). So each time the server accepts a
connection, this accepts up to a few more of the waiting ones and hands them to the loop.
"""

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable

EXTRA_ACCEPTS = 16  # per accepted connection: a burst of a thousand drains in a few loop turns
ANY_ADDRESS = ("0.0.0.0", "::")  # noqa: S104 - recognising a wildcard listener, not binding one
_listeners: dict[tuple[str, int], socket.socket | None] = {}
_starting: set["asyncio.Task[object]"] = set()
_stopped: set[int] = set()  # servers (by the id of their set of connections) that are shutting down


def stop(server: int) -> None:
    """This server is shutting down: accept nothing more for it (the kernel queue is uvicorn's business)."""
    _stopped.add(server)


def stopped(server: int) -> bool:
    return server in _stopped


def listener_for(address: tuple[str, int]) -> socket.socket | None:
    """A duplicate of this process's listening socket that accepted a connection on `address` (the connection's
    local address), found once, or None (then uvloop's own accepting is all there is). Linux only."""
    if address not in _listeners:
        _listeners[address] = _find_listener(address)
    return _listeners[address]


def _listens_for(sockname: tuple[str, int], address: tuple[str, int]) -> bool:
    return sockname[1] == address[1] and (sockname[0] == address[0] or sockname[0] in ANY_ADDRESS)


def _find_listener(address: tuple[str, int]) -> socket.socket | None:
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            try:
                duplicate = os.dup(int(name))
            except (OSError, ValueError):
                continue
            try:
                sock = socket.socket(fileno=duplicate)
            except OSError:
                os.close(duplicate)
                continue
            with contextlib.suppress(OSError):
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) and _listens_for(
                    sock.getsockname(), address
                ):
                    sock.setblocking(False)  # already so in the kernel (shared with uvloop); Python's view only
                    return sock
            sock.close()
    return None


def accept_waiting(
    listener: socket.socket,
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Callable[[], asyncio.Protocol],
    *,
    server: int,
) -> int:
    """Accept up to EXTRA_ACCEPTS waiting connections and serve each with a new protocol; how many were taken."""
    taken = 0
    while taken < EXTRA_ACCEPTS and server not in _stopped:
        try:
            conn, _ = listener.accept()
        except OSError:  # BlockingIOError: nothing is waiting (or the listener is gone)
            break
        conn.setblocking(False)
        task = loop.create_task(loop.connect_accepted_socket(protocol_factory, conn))
        _starting.add(task)
        task.add_done_callback(_starting.discard)
        taken += 1
    return taken
