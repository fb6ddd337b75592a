"""Cold path, blob case: answer at once from the tenant's context blob while its pod warms, then store the message."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import metrics
from gateway.cold import answer as coldanswer
from gateway.cold.calls import PodCalls
from gateway.cold.response import SSE_HEADERS, send_body, until_done
from gateway.cold.warming import QueueFull, Ticket, Warmer, WarmFailed
from gateway.errors import Receive, Send, send_json
from gateway.platform import TenantRoute
from gateway.request import GatewayRequest

log = logging.getLogger("gateway.cold")

WARM_ATTEMPTS_FOR_DELIVERY = 3

Spawn = Callable[[Awaitable[Any]], "asyncio.Task[Any]"]


class BlobAnswer:
    def __init__(self, calls: PodCalls, warmer: Warmer, spawn: Spawn) -> None:
        self.calls = calls
        self.warmer = warmer
        self.spawn = spawn  # background work that outlives the request (the delivery)

    async def answer(
        self, request: GatewayRequest, ticket: Ticket, blob: dict[str, Any], receive: Receive, send: Send
    ) -> int:
        body = request.document
        request_id = request.request_id
        rid = request_id.decode()
        message = coldanswer.last_user_message(body) or ""
        answer = coldanswer.compose(blob, message)
        ticket.handed_off = True
        delivery = self.spawn(self.deliver(ticket, request.route, rid, body["messages"], answer))
        metrics.cold_starts.labels("blob").inc()
        headers = [(b"x-percolate-cold-start", b"blob"), (b"x-request-id", request_id)]
        if not coldanswer.wants_stream(body):
            doc = coldanswer.completion(answer, request_id=rid, kind="blob", user_message=message)
            await send_json(send, 200, doc, headers)
            metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - request.started)
            return 200
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        # The warming event and the whole answer in one write: the answer is known now, so its first words need
        # not wait behind one send per event (about 40 of them).
        warming = coldanswer.status_comment(coldanswer.WARMING, cold_start="blob")
        usage_of = message if coldanswer.wants_usage(body) else None
        parts = coldanswer.chunks(answer, request_id=rid, kind="blob", usage_of=usage_of)
        await send_body(send, b"".join([warming, *parts]))
        metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - request.started)
        # The answer is out; the stream stays open until the message is stored, so the client knows it was.
        if not await until_done(delivery, receive):
            return 200  # the client left; the delivery carries on without it
        result = delivery.result()
        if result is None:
            await send_body(send, coldanswer.status_comment("delivered", request_id=rid))
        else:
            await send_body(send, coldanswer.error_event(result.code, f"your message was not stored: {result.message}"))
        await send_body(send, coldanswer.DONE, more=False)
        return 200

    async def deliver(
        self, ticket: Ticket, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        """Store the message once the pod is warm: None on success, else why not (after retries, warming again
        up to WARM_ATTEMPTS_FOR_DELIVERY times)."""
        error: WarmFailed | None = None
        for warm_attempt in range(WARM_ATTEMPTS_FOR_DELIVERY):
            try:
                if warm_attempt:
                    await asyncio.sleep(0.2 * warm_attempt)
                    ticket = self.warmer.enter(route.tenant_id, route.generation)
                pod = await ticket.ready()
            except QueueFull as exc:
                error = WarmFailed(503, "warm_queue_full", str(exc))
                continue
            except WarmFailed as exc:
                error = exc
                continue
            error = await self.calls.deliver(pod, route, request_id, messages, answer)
            if error is None or error.code != "delivery_unavailable":
                break
        if error is not None:
            metrics.deliveries.labels("failed").inc()
            log.warning(
                "message %s for %s answered from the blob was not stored: %s", request_id, route.tenant_id, error
            )
        return error
