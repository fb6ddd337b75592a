"""A pod's answer streamed down to the client chunk by chunk (each `send` awaited, which is the backpressure), the
pod connection released the moment the client goes away.

Abort rule (as mitmproxy): an upstream that fails before response headers is a 502 (504 on timeout); after headers
the client connection is closed, never a half-answer dressed as a whole one.
"""

import asyncio

from gateway.body import wait_for_disconnect
from gateway.errors import Receive, Send
from gateway.pods.h1client import H1Response


async def _copy_body(response: H1Response, send: Send, idle_timeout: float) -> None:
    while (chunk := await response.next_chunk(idle_timeout)) is not None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream_response(response: H1Response, send: Send, receive: Receive, *, idle_timeout: float) -> bool:
    """Copy the upstream body to the client; False if either side went away before the end. The copy and a
    disconnect watcher race once per response (not per chunk): a client that leaves cancels the copy at once."""
    copy = asyncio.ensure_future(_copy_body(response, send, idle_timeout))
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait((copy, watcher), return_when=asyncio.FIRST_COMPLETED)
        if not copy.done():
            copy.cancel()
            return False
        return copy.exception() is None
    except asyncio.CancelledError:
        copy.cancel()
        raise
    finally:
        watcher.cancel()
        if copy.done() and not copy.cancelled() and copy.exception() is None:
            response.release()
        else:
            response.close()
