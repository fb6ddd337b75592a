"""Admission control for one gateway process: a request is refused at once (503, `Retry-After`, the usual JSON
error) while the process's event loop runs late and work is queued in it, or while it has its bound of requests
admitted and not yet answering.

- The loop's lateness is the queue every request waits in: a loop that runs its callbacks 100 ms late makes each
  request, which needs a few turns of it, wait a few hundred milliseconds, whatever their number. A probe measures
  it every PROBE_SECONDS (the server starts it); past `max_lag`, and with `lagging_limit` requests in flight,
  new requests are refused until it recovers. Lag rises only when the gateway itself is behind, on a fast machine
  and a slow one alike, where a fixed count means a latency only at the speed it was chosen for, and counts the
  requests that wait on a pod as well (measured: docs/decisions.md, "Admission control").
- A request counts from its admission until its response starts (the first message through its `send`) or it ends
  without one, so a stream stops counting once its first bytes go out: open streams never crowd out new requests
  and are never refused. `limit` is the backstop on the count whatever the loop does.
"""

import asyncio
import math
import sys
import time
from collections.abc import Awaitable
from typing import Any

from gateway import metrics
from gateway.errors import Send, error_body, send_json
from gateway.surface import OWN_PATHS

RETRY_AFTER_SECONDS = 1
OVERLOADED = error_body("overloaded", "the gateway is at capacity; retry shortly")
EXEMPT_PATHS = OWN_PATHS  # probes and scrapes are answered however busy the process is


def _overloaded_response(*, close: bool) -> bytes:
    head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
    head += b"retry-after: %d\r\ncontent-length: %d\r\n" % (RETRY_AFTER_SECONDS, len(OVERLOADED))
    return head + (b"connection: close\r\n" if close else b"") + b"\r\n" + OVERLOADED


# The same answer as `refuse` sends, written by the server itself (gateway.server.protocol) without starting the app.
OVERLOADED_RESPONSE = _overloaded_response(close=False)
OVERLOADED_RESPONSE_CLOSE = _overloaded_response(close=True)


class Admission:
    """The count of admitted requests not yet answering, at most `limit`; and, while the loop runs later than
    `max_lag` seconds, at most `lagging_limit`. Lagging means LAGGING_SAMPLES probes in a row: one stall (a
    collection, a noisy neighbour taking the CPU for a moment) refuses nothing, a loop that stays behind sheds within
    a few tenths of a second, and the first probe on time admits again. The lagging limit keeps a late loop with
    little work queued in it (a burst of new streams, which stop counting once they flow) from refusing anything."""

    LAGGING_SAMPLES = 3

    __slots__ = ("in_flight", "lagging", "lagging_limit", "late_samples", "limit", "max_lag")

    def __init__(self, limit: int, max_lag: float = math.inf, lagging_limit: int = 0) -> None:
        self.limit, self.max_lag, self.lagging_limit = limit, max_lag, lagging_limit
        self.in_flight = 0
        self.lagging = False
        self.late_samples = 0

    @classmethod
    def from_settings(cls) -> "Admission":
        from django.conf import settings

        return cls(
            settings.GATEWAY_MAX_IN_FLIGHT,
            max_lag=settings.GATEWAY_MAX_LOOP_LAG_SECONDS,
            lagging_limit=settings.GATEWAY_MAX_IN_FLIGHT_LAGGING,
        )

    def full(self) -> bool:
        return self.in_flight >= (self.lagging_limit if self.lagging else self.limit)

    def enter(self) -> bool:
        """Admit one more request, if there is room."""
        if self.in_flight >= (self.lagging_limit if self.lagging else self.limit):
            return False
        self.in_flight += 1
        return True

    def observe_lag(self, lag: float) -> None:
        """The probe's latest measure of how late the loop runs."""
        self.late_samples = self.late_samples + 1 if lag > self.max_lag else 0
        self.lagging = self.late_samples >= self.LAGGING_SAMPLES


# The process's: the gateway app installs its own when it starts serving (lifespan startup); the server's protocol
# reads it to refuse a request before any of the app's work is spent on it, and the server's probe tells it the
# loop's lag. Unbounded until installed (an app driven in-process keeps its own to itself).
PROCESS = Admission(sys.maxsize)
PROBE_SECONDS = 0.05


def install(admission: Admission) -> None:
    global PROCESS
    PROCESS = admission


async def probe_lag(every: float = PROBE_SECONDS) -> None:
    """Measure, for ever, how much later than asked a sleep of `every` seconds ends (the loop's lag), and tell the
    process's admission."""
    while True:
        asked = time.monotonic() + every
        await asyncio.sleep(every)
        lag = time.monotonic() - asked
        PROCESS.observe_lag(lag)
        metrics.loop_lag.observe(lag)


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
