"""The hot path: a request forwarded to its tenant's pod through the pod client, and the pod's answer streamed back.

Errors before the answer's headers become the gateway's JSON errors (502, 503, 504, 408, 413); after them the client
connection is closed (gateway.proxy.upstream). When the request could have gone cold (`cold_eligible`) and the pod
answers that it does not hold the tenant, nothing is sent: `forward` returns NOT_HELD, and the caller
(gateway.dispatch, the one place that chooses hot or cold) hands the request to the cold path.
"""

import enum
import functools
import time

from gateway import metrics
from gateway.body import BodyTimeout, BodyTooLarge, wait_for_disconnect
from gateway.errors import ClientGone, Receive, Send, error_code_of, send_error
from gateway.headers import strip_response
from gateway.pods.client import NOT_HOT_CODES, NoPods, PodClient, Unreachable
from gateway.pods.h1client import H1Response, UpstreamError, UpstreamHeadersTooLarge
from gateway.proxy.upstream import stream_response
from gateway.request import GatewayRequest

SMALL_ANSWER = 64 * 1024


class NotHeld(enum.Enum):
    NOT_HELD = "the pod does not hold the tenant"


NOT_HELD = NotHeld.NOT_HELD


@functools.lru_cache(maxsize=4096)
def route_header(tier: str, pod: str, rank: int) -> bytes:
    """The X-Percolate-Route value (tier/pod/rank): few distinct values, made once each."""
    return f"{tier}/{pod}/{rank}".encode()


def _small_and_whole(response: H1Response) -> bool:
    """A response with a small declared length that is not an event stream: read it at once."""
    length = response.content_length
    return length is not None and length <= SMALL_ANSWER and response.content_type != b"text/event-stream"


async def refuse(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> int:
    await send_error(send, status, code, message, headers)
    return status


async def body_error(send: Send, exc: BaseException, max_body_bytes: int) -> int:
    """The answer to a client whose body failed: too large, too slow, or gone (nobody to answer)."""
    if isinstance(exc, BodyTooLarge):
        return await refuse(send, 413, "body_too_large", f"body exceeds {max_body_bytes} bytes")
    if isinstance(exc, BodyTimeout):
        return await refuse(send, 408, "body_timeout", "request body arrived too slowly")
    return 499


class HotPath:
    def __init__(self, client: PodClient, *, max_body_bytes: int) -> None:
        self.client = client
        self.max_body_bytes = max_body_bytes

    async def forward(
        self, request: GatewayRequest, receive: Receive, send: Send, *, cold_eligible: bool
    ) -> int | NotHeld:
        """Proxy `request` to its pod; the status answered, or NOT_HELD (nothing sent) when the pod does not hold
        the tenant and the request may go cold."""
        route = request.route
        disconnected = functools.partial(wait_for_disconnect, receive)  # watched only while headers are slow
        try:
            answer = await self.client.forward(request, disconnected=disconnected)
        except NoPods as exc:
            return await refuse(send, 503, "no_pods", str(exc), [(b"retry-after", b"5")])
        except Unreachable as exc:
            return await refuse(send, 502, "upstream_unavailable", str(exc))
        except TimeoutError:
            metrics.upstream_errors.labels("timeout").inc()
            return await refuse(send, 504, "upstream_timeout", "tier pod did not answer in time")
        except (BodyTooLarge, BodyTimeout, ClientGone) as exc:
            return await body_error(send, exc, self.max_body_bytes)
        except UpstreamHeadersTooLarge as exc:
            metrics.upstream_errors.labels("headers_too_large").inc()
            return await refuse(send, 502, "upstream_headers_too_large", str(exc))
        except UpstreamError as exc:
            if request.rest is not None and request.rest.error is not None:
                return await body_error(send, request.rest.error, self.max_body_bytes)
            metrics.upstream_errors.labels("protocol").inc()
            return await refuse(send, 502, "upstream_error", f"tier pod failed: {exc}")
        response, pod, rank = answer.response, answer.pod, answer.rank
        if response.status == 401:  # the pod refused the gateway, not the client: never the client's 401
            response.close()
            metrics.upstream_errors.labels("refused_gateway").inc()
            return await refuse(send, 502, "upstream_refused", "the tier pod refused the gateway")
        try:
            raw: bytes | None = None
            if cold_eligible and response.status in (409, 503):
                raw = await self._read_whole(response)
                if raw is None:
                    return await refuse(send, 502, "upstream_error", "tier pod failed mid-answer")
                if error_code_of(raw) in NOT_HOT_CODES:  # the pod does not hold the tenant: cold after all
                    return NOT_HELD
            metrics.route_choices.inc(route.tier, "first" if rank == 0 else "fallback")
            metrics.request_seconds.observe(time.perf_counter() - request.started, route.tier)
            out = [
                *strip_response(response.raw_headers),
                (b"x-request-id", request.request_id),
                (b"x-percolate-route", route_header(route.tier, pod, rank)),
            ]
            if raw is None and _small_and_whole(response):  # one send, no streaming machinery, for the common answer
                raw = response.take_whole()  # usually it came in with the headers
                if raw is not None:
                    response.release()
                elif (raw := await self._read_whole(response)) is None:
                    return await refuse(send, 502, "upstream_error", "tier pod failed mid-answer")
            if raw is not None:
                out.append((b"content-length", b"%d" % len(raw)))  # whole: framed like the pod framed it
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            if raw is not None:
                await send({"type": "http.response.body", "body": raw, "more_body": False})
            elif not await stream_response(response, send, receive, idle_timeout=self.client.timeouts.idle):
                metrics.upstream_errors.labels("aborted").inc()
            return response.status
        except BaseException:
            response.close()  # cancelled or failed mid-way: never leave the pod connection dangling
            raise

    async def _read_whole(self, response: H1Response) -> bytes | None:
        """The whole (small) body, the connection released; None if the pod broke off or stalled."""
        try:
            return await self.client.read_whole(response)
        except (UpstreamError, TimeoutError):
            metrics.upstream_errors.labels("protocol").inc()
            return None
