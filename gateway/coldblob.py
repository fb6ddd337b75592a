"""Cold path, blob case: answer at once from the tenant's context blob while its pod warms, then store the message."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import coldanswer, metrics
from gateway.coldpodcalls import PodCalls
from gateway.coldresponse import SSE_HEADERS, send_body, until_done
from gateway.errors import Receive, Send, send_json
from gateway.platform import TenantRoute
from gateway.warming import Ticket


class BlobAnswer(PodCalls):
    """Mixin of ColdPath (which defines `_spawn`)."""

    _spawn: Callable[[Awaitable[Any]], "asyncio.Task[Any]"]

    async def _answer_from_blob(
        self,
        send: Send,
        receive: Receive,
        ticket: Ticket,
        route: TenantRoute,
        request_id: bytes,
        body: Any,
        blob: dict[str, Any],
        started: float,
    ) -> int:
        rid = request_id.decode()
        message = coldanswer.last_user_message(body) or ""
        answer = coldanswer.compose(blob, message)
        ticket.handed_off = True
        delivery = self._spawn(self._deliver(ticket, route, rid, body["messages"], answer))
        metrics.cold_starts.labels("blob").inc()
        headers = [(b"x-percolate-cold-start", b"blob"), (b"x-request-id", request_id)]
        if not coldanswer.wants_stream(body):
            doc = coldanswer.completion(answer, request_id=rid, kind="blob", user_message=message)
            await send_json(send, 200, doc, headers)
            metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - started)
            return 200
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        # The warming event and the whole answer in one write: the answer is known now, so its first words need
        # not wait behind one send per event (about 40 of them).
        warming = coldanswer.status_comment(coldanswer.WARMING, cold_start="blob")
        usage_of = message if coldanswer.wants_usage(body) else None
        parts = coldanswer.chunks(answer, request_id=rid, kind="blob", usage_of=usage_of)
        await send_body(send, b"".join([warming, *parts]))
        metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - started)
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
