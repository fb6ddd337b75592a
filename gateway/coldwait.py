"""Cold path, wait case: hold the request in the tenant's warming queue, then proxy it to the warm pod."""

import asyncio
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway import coldanswer, metrics
from gateway.coldresponse import SSE_HEADERS, refuse, send_body, until_done
from gateway.errors import Receive, Send, error_code_of
from gateway.h1client import UpstreamError
from gateway.headers import strip_response
from gateway.platform import TenantRoute
from gateway.upstream import ClientGone, stream_response, wait_for_disconnect
from gateway.warming import Ticket, WarmFailed

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.forwarding import PodRequest


def with_generation(headers: list[tuple[bytes, bytes]], generation: int) -> list[tuple[bytes, bytes]]:
    """The request's headers naming the generation the pod was warmed at (a tier move may have bumped it)."""
    value = str(generation).encode()
    return [(name, value) if name == b"x-percolate-generation" else (name, v) for name, v in headers]


class WaitForWarm:
    """Mixin of ColdPath (which sets `gw` and `generation_for`)."""

    gw: "Gateway"
    generation_for: Callable[[TenantRoute], int]

    async def _wait(
        self,
        send: Send,
        receive: Receive,
        ticket: Ticket,
        route: TenantRoute,
        request: "PodRequest",
        payload: bytes | None,
        body: Any,
        started: float,
    ) -> int:
        """`request` is built as for the hot path (gateway.forwarding): the same target, query string and headers."""
        metrics.cold_starts.labels("wait").inc()
        request_id = request.request_id
        stream = coldanswer.wants_stream(body)
        mark = (b"x-percolate-cold-start", b"wait")
        if stream:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*SSE_HEADERS, mark, (b"x-request-id", request_id)],
                }
            )
            await send_body(send, coldanswer.status_comment(coldanswer.WARMING, cold_start="wait"))
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - started)
        ready = asyncio.ensure_future(ticket.ready())
        try:
            if not await until_done(ready, receive):
                return 499
            pod = ready.result()
        except WarmFailed as exc:
            if stream:
                await send_body(send, coldanswer.error_event(exc.code, exc.message), more=False)
                return 200
            return await refuse(send, exc.status, exc.code, exc.message, retry_after=exc.retry_after)
        finally:
            ready.cancel()
        headers = with_generation(request.headers, self.generation_for(route))
        try:
            response = await self.gw.pool.request(
                request.method,
                pod,
                request.target,
                headers,
                payload,
                header_timeout=self.gw.timeouts.response_headers,
                disconnected=functools.partial(wait_for_disconnect, receive),
            )
        except ClientGone:
            return 499
        except (UpstreamError, TimeoutError) as exc:
            code, message = "upstream_error", f"the warm pod failed: {type(exc).__name__}"
            if stream:
                await send_body(send, coldanswer.error_event(code, message), more=False)
                return 200
            return await refuse(send, 502, code, message)
        if not stream:
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - started)
            out = [*strip_response(response.raw_headers), mark, (b"x-request-id", request_id)]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            await stream_response(response, send, receive, idle_timeout=self.gw.timeouts.idle)
            return response.status
        if response.status != 200:
            try:
                raw = await response.read(self.gw.timeouts.idle)
            except (UpstreamError, TimeoutError):
                raw = b""
            response.release()
            await send_body(
                send,
                coldanswer.error_event(error_code_of(raw) or "upstream_error", raw[:500].decode("utf-8", "replace")),
                more=False,
            )
            return 200
        await stream_response(response, send, receive, idle_timeout=self.gw.timeouts.idle)
        return 200
