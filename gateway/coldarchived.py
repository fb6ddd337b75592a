"""Cold path, archived case: request one restore (single-flight) and answer from the blob, undelivered, if possible."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import coldanswer, metrics
from gateway.coldresponse import SSE_HEADERS, refuse, send_body
from gateway.errors import Send, send_json
from gateway.platform import Platform, TenantRoute

log = logging.getLogger("gateway.coldpath")

ARCHIVED_STATES = frozenset({"archived", "restoring"})
RESTORE_MEMO_SECONDS = 60.0
RESTORE_RETRY_AFTER = 30


class ArchivedAnswer:
    """Mixin of ColdPath (which sets these attributes and defines `_blob` and `_spawn`)."""

    platform: Platform
    _restores: dict[uuid.UUID, float]
    _restoring: dict[uuid.UUID, "asyncio.Task[None]"]
    _blob: Callable[[TenantRoute], Awaitable[dict[str, Any] | None]]
    _spawn: Callable[[Awaitable[Any]], "asyncio.Task[Any]"]

    async def _archived(self, send: Send, route: TenantRoute, request_id: bytes, body: Any, started: float) -> int:
        metrics.cold_starts.labels("archived").inc()
        self._request_restore(route.tenant_id)
        blob = await self._blob(route)
        message = coldanswer.last_user_message(body)
        headers = [(b"retry-after", str(RESTORE_RETRY_AFTER).encode()), (b"x-request-id", request_id)]
        if blob is None or message is None:
            status = await refuse(
                send,
                503,
                "restoring",
                "this workspace is archived and is being restored; try again shortly",
                retry_after=RESTORE_RETRY_AFTER,
            )
            metrics.cold_start_ttfb.labels("archived").observe(time.perf_counter() - started)
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
        metrics.cold_start_ttfb.labels("archived").observe(time.perf_counter() - started)
        return 200

    def _request_restore(self, tenant_id: uuid.UUID) -> None:
        """At most one restore request per tenant per RESTORE_MEMO_SECONDS from this gateway (single-flight)."""
        now = time.monotonic()
        if tenant_id in self._restoring or self._restores.get(tenant_id, 0.0) > now:
            return
        self._restores[tenant_id] = now + RESTORE_MEMO_SECONDS

        async def run() -> None:
            try:
                result = await self.platform.request_restore(tenant_id)
                metrics.restores_requested.labels(result).inc()
            except Exception:
                metrics.restores_requested.labels("failed").inc()
                self._restores.pop(tenant_id, None)
                log.exception("requesting the restore of %s failed", tenant_id)
            finally:
                self._restoring.pop(tenant_id, None)

        self._restoring[tenant_id] = self._spawn(run())
