"""ASGI reply helpers shared by the cold-path modules (SSE framing, refusals, waiting against a disconnect)."""

import asyncio
from typing import Any

from gateway.body import wait_for_disconnect
from gateway.errors import Receive, Send, send_error

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_body(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def refuse(send: Send, status: int, code: str, message: str, *, retry_after: int | None = None) -> int:
    extra = [(b"retry-after", str(retry_after).encode())] if retry_after is not None else None
    await send_error(send, status, code, message, extra)
    return status


async def until_done(task: "asyncio.Future[Any]", receive: Receive) -> bool:
    """Wait for `task`; False if the client disconnected first (the task is left running)."""
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        return task.done()
    finally:
        watcher.cancel()
