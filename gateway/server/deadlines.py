"""The edge's deadlines for clients that never finish a request, as nginx (`client_header_timeout`,
`client_body_timeout`) and Envoy (`request_headers_timeout`) have them, plus a minimum body rate as Apache's
mod_reqtimeout has it:

- the first request's whole head within `first_request_seconds` of connecting (nothing sent at all included);
- a later request's whole head within `head_seconds` of its first byte;
- a body within `body_grace_seconds`, plus one second for every `body_min_rate` bytes received meanwhile, so a
  steady upload of at least that rate never trips it and a drip of a byte every few seconds is cut. Time during
  which the server itself held reading paused (flow control) does not count against the client.

The rule is here; the server (protocol.py) applies it in its once-a-second sweep (no timer per request), so a
deadline is kept to within a second.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.protocols.http.flow_control import FlowControl

FIRST_REQUEST, HEAD, BODY = "first_request", "head", "body"  # what a connection was cut in (the metric's label)


@dataclass(frozen=True)
class EdgeDeadlines:
    first_request_seconds: float
    head_seconds: float
    body_grace_seconds: float
    body_min_rate: float  # bytes a second

    @classmethod
    def from_settings(cls) -> "EdgeDeadlines":
        from django.conf import settings  # the protocol is made after the app (and so Django) is loaded

        return cls(
            settings.GATEWAY_FIRST_REQUEST_TIMEOUT_SECONDS,
            settings.GATEWAY_HEADER_TIMEOUT_SECONDS,
            settings.GATEWAY_BODY_TIMEOUT_SECONDS,
            settings.GATEWAY_BODY_MIN_BYTES_PER_SECOND,
        )


class Watch:
    """What the sweep last saw of one connection: the part of a request it was receiving (a phase, and an object
    standing for that request, compared by identity), since when, and the bytes received and seconds paused then."""

    __slots__ = ("of", "paused", "phase", "received", "since")

    def __init__(self, phase: str | None, of: object, since: float) -> None:
        self.phase, self.of, self.since, self.received, self.paused = phase, of, since, 0, 0.0

    def forget(self) -> None:
        """Nothing is being received: whatever comes next is watched from when it is first seen."""
        self.phase = None

    def overdue(
        self,
        phase: str,
        of: object,
        now: float,
        allowed: float,
        *,
        received: int = 0,
        paused: float = 0.0,
        min_rate: float = 0.0,
    ) -> bool:
        """Whether this part has taken longer than `allowed` seconds, not counting the `paused` seconds added since
        it was first seen, plus a second per `min_rate` bytes of `received` added since. A part not seen before is
        watched from `now`."""
        if phase != self.phase or of is not self.of:
            self.phase, self.of, self.since, self.received, self.paused = phase, of, now, received, paused
            return False
        if min_rate:
            allowed += (received - self.received) / min_rate
        return now - self.since - (paused - self.paused) > allowed


class TimedFlowControl(FlowControl):
    """uvicorn's flow control, also adding up how long this server held reading paused (the same two methods,
    timed only when they change something: `resume_reading` runs on every receive)."""

    def __init__(self, transport: asyncio.Transport, clock: Callable[[], float]) -> None:
        super().__init__(transport)
        self._clock = clock
        self._paused_at = 0.0
        self._paused_total = 0.0

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()
            self._paused_at = self._clock()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()
            self._paused_total += self._clock() - self._paused_at

    def paused_seconds(self, now: float) -> float:
        """Seconds reading has been paused in all, up to `now`."""
        return self._paused_total + (now - self._paused_at if self.read_paused else 0.0)
