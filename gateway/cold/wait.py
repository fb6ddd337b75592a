"""Cold path, wait case: hold the request in the tenant's warming queue, then proxy it to the warm pod."""

import asyncio
import functools
import time

from gateway import metrics
from gateway.body import wait_for_disconnect
from gateway.cold import answer as coldanswer
from gateway.cold.calls import PodCalls
from gateway.cold.response import SSE_HEADERS, refuse, send_body, until_done
from gateway.cold.warming import Ticket, WarmFailed
from gateway.errors import ClientGone, Receive, Send, error_code_of
from gateway.headers import Headers, strip_response
from gateway.pods.client import PodClient
from gateway.pods.h1client import UpstreamError
from gateway.proxy.upstream import stream_response
from gateway.request import GatewayRequest


def with_generation(headers: Headers, generation: int) -> Headers:
    """The request's headers naming the generation the pod was warmed at (a tier move may have bumped it)."""
    value = str(generation).encode()
    return [(name, value) if name == b"x-percolate-generation" else (name, v) for name, v in headers]


class WaitForWarm:
    def __init__(self, client: PodClient, calls: PodCalls) -> None:
        self.client = client
        self.calls = calls

    async def wait(self, request: GatewayRequest, ticket: Ticket, receive: Receive, send: Send) -> int:
        """`request` is the one the hot path would have sent: the same target, query string and headers."""
        metrics.cold_starts.labels("wait").inc()
        request_id = request.request_id
        stream = coldanswer.wants_stream(request.document)
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
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - request.started)
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
        warmed = request.with_headers(with_generation(request.headers, self.calls.generation_for(request.route)))
        try:
            response = await self.client.send_to(
                pod, warmed, disconnected=functools.partial(wait_for_disconnect, receive)
            )
        except ClientGone:
            return 499
        except (UpstreamError, TimeoutError) as exc:
            code, message = "upstream_error", f"the warm pod failed: {type(exc).__name__}"
            if stream:
                await send_body(send, coldanswer.error_event(code, message), more=False)
                return 200
            return await refuse(send, 502, code, message)
        idle = self.client.timeouts.idle
        if not stream:
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - request.started)
            out = [*strip_response(response.raw_headers), mark, (b"x-request-id", request_id)]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            await stream_response(response, send, receive, idle_timeout=idle)
            return response.status
        if response.status != 200:
            try:
                raw = await self.client.read_whole(response)
            except (UpstreamError, TimeoutError):
                raw = b""
            await send_body(
                send,
                coldanswer.error_event(error_code_of(raw) or "upstream_error", raw[:500].decode("utf-8", "replace")),
                more=False,
            )
            return 200
        await stream_response(response, send, receive, idle_timeout=idle)
        return 200
