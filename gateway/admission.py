"""Admission control: a bound on the requests one gateway process has admitted and not yet begun to answer.

A request counts from its admission until its response starts (the first message through its `send`), or until it
ends without one; a stream stops counting once its first bytes go out, so open streams never crowd out new
requests and are never refused. Past the bound a request is refused at once with 503, `Retry-After` and the usual
JSON error, before any work is spent on it: at twice the gateway's capacity the admitted requests keep a bounded
latency instead of every request queueing (the bound, how it was chosen and the figures: docs/decisions.md,
"Admission control").
"""

import sys
from collections.abc import Awaitable
from typing import Any

from gateway import metrics
from gateway.errors import Send, error_body, send_json
from gateway.own_endpoints import OWN_PATHS

RETRY_AFTER_SECONDS = 1
OVERLOADED = error_body("overloaded", "the gateway is at capacity; retry shortly")
EXEMPT_PATHS = OWN_PATHS  # probes and scrapes are answered however busy the process is


def _overloaded_response(*, close: bool) -> bytes:
    head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
    head += b"retry-after: %d\r\ncontent-length: %d\r\n" % (RETRY_AFTER_SECONDS, len(OVERLOADED))
    return head + (b"connection: close\r\n" if close else b"") + b"\r\n" + OVERLOADED


# The same answer as `refuse` sends, written by the server itself (gateway.server) without starting the app.
OVERLOADED_RESPONSE = _overloaded_response(close=False)
OVERLOADED_RESPONSE_CLOSE = _overloaded_response(close=True)


class Admission:
    """The count of admitted requests not yet answering, at most `limit`."""

    __slots__ = ("in_flight", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def enter(self) -> bool:
        """Admit one more request, if there is room."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def full(self) -> bool:
        return self.in_flight >= self.limit


# This process's: the gateway app counts in it (for_process), the server's protocol reads it to refuse a request
# before any of the app's work is spent on it. Unbounded until the app sets its limit.
PROCESS = Admission(sys.maxsize)


def for_process(limit: int) -> Admission:
    PROCESS.limit = limit
    return PROCESS


class Admitted:
    """The `send` of an admitted request: the first message through it (the response starting) gives the request's
    place back, as does `release()` for a request that ends without answering; either way once."""

    __slots__ = ("_admission", "_held", "_send")

    def __init__(self, admission: Admission, send: Send) -> None:
        self._admission, self._send, self._held = admission, send, True

    def __call__(self, message: dict[str, Any]) -> Awaitable[None]:
        if self._held:
            self._held = False
            self._admission.in_flight -= 1
        return self._send(message)  # the inner send's own awaitable: no coroutine frame of ours per message

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission.in_flight -= 1


async def refuse(send: Send) -> int:
    """Answer a request that found no room: 503 at once, with when to retry."""
    metrics.shed.inc("app")
    await send_json(send, 503, OVERLOADED, [(b"retry-after", b"%d" % RETRY_AFTER_SECONDS)])
    return 503
