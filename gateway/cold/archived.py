"""Cold path, archived case: request one restore (single-flight) and answer from the blob, undelivered, if possible."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import metrics
from gateway.cold import answer as coldanswer
from gateway.cold.response import SSE_HEADERS, refuse, send_body
from gateway.errors import Send, send_json
from gateway.platform import Platform
from gateway.request import GatewayRequest

log = logging.getLogger("gateway.cold")

ARCHIVED_STATES = frozenset({"archived", "restoring"})
RESTORE_MEMO_SECONDS = 60.0
RESTORE_RETRY_AFTER = 30

Spawn = Callable[[Awaitable[Any]], "asyncio.Task[Any]"]


class ArchivedAnswer:
    def __init__(self, platform: Platform, spawn: Spawn) -> None:
        self.platform = platform
        self.spawn = spawn
        self._requested: dict[uuid.UUID, float] = {}  # tenant → until when no new restore is requested
        self.restoring: dict[uuid.UUID, asyncio.Task[None]] = {}  # restore requests under way

    async def answer(self, request: GatewayRequest, blob: dict[str, Any] | None, send: Send) -> int:
        """Answer an archived tenant's request (the restore was asked for by `request_restore`)."""
        metrics.cold_starts.labels("archived").inc()
        body = request.document
        message = coldanswer.last_user_message(body)
        request_id = request.request_id
        headers = [(b"retry-after", str(RESTORE_RETRY_AFTER).encode()), (b"x-request-id", request_id)]
        if blob is None or message is None:
            status = await refuse(
                send,
                503,
                "restoring",
                "this workspace is archived and is being restored; try again shortly",
                retry_after=RESTORE_RETRY_AFTER,
            )
            metrics.cold_start_ttfb.labels("archived").observe(time.perf_counter() - request.started)
            return status
        rid = request_id.decode()
        answer = coldanswer.compose(blob, message)
        headers.append((b"x-percolate-cold-start", b"blob"))
        if not coldanswer.wants_stream(body):
            doc = coldanswer.completion(answer, request_id=rid, kind="archived", user_message=message)
            await send_json(send, 200, doc, headers)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
            restoring = coldanswer.status_comment("restoring", cold_start="blob")
            usage_of = message if coldanswer.wants_usage(body) else None
            parts = coldanswer.chunks(answer, request_id=rid, kind="archived", usage_of=usage_of)
            await send_body(send, b"".join([restoring, *parts]))
            await send_body(
                send,
                coldanswer.status_comment("restoring", delivered=False, retry_after=RESTORE_RETRY_AFTER),
            )
            await send_body(send, coldanswer.DONE, more=False)
        metrics.cold_start_ttfb.labels("archived").observe(time.perf_counter() - request.started)
        return 200

    def request_restore(self, tenant_id: uuid.UUID) -> None:
        """At most one restore request per tenant per RESTORE_MEMO_SECONDS from this gateway (single-flight)."""
        now = time.monotonic()
        if tenant_id in self.restoring or self._requested.get(tenant_id, 0.0) > now:
            return
        self._requested[tenant_id] = now + RESTORE_MEMO_SECONDS

        async def run() -> None:
            try:
                result = await self.platform.request_restore(tenant_id)
                metrics.restores_requested.labels(result).inc()
            except Exception:
                metrics.restores_requested.labels("failed").inc()
                self._requested.pop(tenant_id, None)
                log.exception("requesting the restore of %s failed", tenant_id)
            finally:
                self.restoring.pop(tenant_id, None)

        self.restoring[tenant_id] = self.spawn(run())
