"""The gateway's cold path: a chat request for a tenant that is not hot.

- **blob**: the tenant has a readable context blob (and is not `mobile_only`): stream at once a warming event and an
  answer built from the blob (`X-Percolate-Cold-Start: blob`), while the pod warms in the background; once warm,
  the user's message and the answer it got are delivered to the tenant's store through the node's idempotent
  `POST /internal/deliver/{id}` (keyed by the request id: a retry never duplicates). The stream ends with a
  `percolate.status` event saying the message was stored (or an error event saying it was not), then `[DONE]`.
- **wait**: no blob, or `mobile_only`: stream the warming event (streaming requests), wait in the tenant's bounded
  warming queue, then proxy the request to the warm pod (`X-Percolate-Cold-Start: wait`).
- **archived**: archived or restoring tenants: one restore is requested (single-flight per gateway, and the
  platform refuses a second concurrent job); the request is answered from the blob if there is one, marked
  `"delivered": false` (the workspace cannot take the message until restored), else 503 with `Retry-After`.

Warms are single-flight per tenant (gateway.warming); every waiter ends with an answer or a clear 503/504.
"""

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from asgiref.sync import sync_to_async
from django.conf import settings

from gateway import coldanswer, metrics
from gateway.blobs import BlobCache
from gateway.errors import Receive, Send, send_error, send_json
from gateway.headers import strip_response
from gateway.upstream import stream_response, wait_for_disconnect
from gateway.warming import QueueFull, Ticket, Warmer, WarmFailed
from tenants.selectors import TenantRoute

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
NOT_HOT_CODES = frozenset({"unknown_generation", "load_failed"})
ARCHIVED_STATES = frozenset({"archived", "restoring"})
RESTORE_MEMO_SECONDS = 60.0
RESTORE_RETRY_AFTER = 30
DELIVERY_ATTEMPTS = 5
WARM_ATTEMPTS_FOR_DELIVERY = 3
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def is_chat(scope: dict[str, Any]) -> bool:
    return scope["method"] == "POST" and scope["path"].rstrip("/") == CHAT_PATH


def request_restore(tenant_id: uuid.UUID) -> str:
    """Blocking: ask the platform for a restore; 'requested', or 'already' if one is active (or not possible)."""
    from archival.services import restore_request
    from tenants.audit import Actor
    from tenants.errors import Conflict

    try:
        restore_request(tenant_id=tenant_id, actor=Actor.system("gateway"))
    except Conflict as exc:
        log.info("restore of %s not requested: %s", tenant_id, exc)
        return "already"
    return "requested"


class ColdPath:
    def __init__(self, gateway: "Gateway") -> None:
        self.gw = gateway
        self.enabled = settings.GATEWAY_COLD_PATH_ENABLED
        self.blobs = BlobCache(max_bytes=settings.GATEWAY_BLOB_CACHE_BYTES)
        self.warm_timeout = settings.GATEWAY_WARM_TIMEOUT_SECONDS
        self.warmer = Warmer(
            self._warm_pod,
            queue_size=settings.GATEWAY_WARM_QUEUE_SIZE,
            deadline=self.warm_timeout,
            on_warm=self._mark_warm,
        )
        self.warm_ttl = settings.GATEWAY_ROUTE_TTL_SECONDS
        self.warmed: dict[uuid.UUID, tuple[int, float]] = {}
        self.restore_fn: Callable[[uuid.UUID], str] = request_restore
        self._restores: dict[uuid.UUID, float] = {}
        self._restoring: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._delivery_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._background: set[asyncio.Task[Any]] = set()

    # -- state ---------------------------------------------------------------------------------------------------

    def is_cold(self, route: TenantRoute) -> bool:
        """Not hot in tenant state, and not warmed by this gateway since (the route cache may lag the node)."""
        if route.state == "hot":
            return False
        marked = self.warmed.get(route.tenant_id)
        return not (marked and marked[0] == route.generation and marked[1] > time.monotonic())

    def _mark_warm(self, tenant_id: uuid.UUID, generation: int, _pod: str) -> None:
        self.warmed[tenant_id] = (generation, time.monotonic() + self.warm_ttl)
        if len(self.warmed) > 100_000:
            self.warmed.clear()

    def forget_warm(self, tenant_id: uuid.UUID) -> None:
        self.warmed.pop(tenant_id, None)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        """The tenant's state changed (`tenant:<id>`): its blob may be new, its pod may have let it go.

        A tenant whose blob this gateway holds is revalidated at once in the background (fresh blob and route), so
        its next cold request finds them in memory instead of paying the fetch; others are only dropped.
        """
        had = tenant_id in self.blobs
        self.blobs.invalidate(tenant_id)
        self.warmed.pop(tenant_id, None)
        if had:
            self._spawn(self._revalidate(tenant_id))

    async def _revalidate(self, tenant_id: uuid.UUID) -> None:
        try:
            await self.gw.routes.get(tenant_id)
            await self.blobs.get(tenant_id)
        except Exception:  # best effort: the next request loads them itself
            log.exception("revalidating the cold-path entries of %s failed", tenant_id)

    def reset(self) -> None:
        self.blobs.clear()
        self.warmed.clear()

    async def close(self) -> None:
        await self.warmer.close()
        for task in list(self._background):
            task.cancel()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- pod calls -----------------------------------------------------------------------------------------------

    def _service_headers(self, route: TenantRoute, request_id: str) -> dict[str, str]:
        return {
            "Authorization": self.gw.service_authorization.decode(),
            "X-Percolate-Tenant": str(route.tenant_id),
            "X-Percolate-Generation": str(route.generation),
            "X-Request-Id": request_id,
        }

    async def _warm_pod(self, tenant_id: uuid.UUID, generation: int) -> str:
        route = await self.gw.routes.get(tenant_id)
        if route is None:
            raise WarmFailed(503, "warm_failed", "the tenant is gone")
        pods = self.gw.discovery.pods(route.tier)
        assert self.gw.session is not None
        for _attempt in range(3):
            pod, _rank = pods.choose(str(tenant_id))
            if pod is None:
                raise WarmFailed(503, "no_pods", f"no pods for tier {route.tier}")
            try:
                async with self.gw.session.post(
                    f"http://{pod}/internal/warm/{tenant_id}",
                    json={"generation": generation},
                    headers={"Authorization": self.gw.service_authorization.decode()},
                ) as response:
                    body = await response.read()
            except aiohttp.ClientConnectorError:
                pods.eject(pod)
                continue
            except aiohttp.ClientError as exc:
                raise WarmFailed(502, "warm_failed", f"the tier pod failed: {type(exc).__name__}") from exc
            if response.status == 200:
                return pod
            code = _error_code(body)
            if code == "stale_generation":
                self.gw.routes.invalidate(tenant_id)
            raise WarmFailed(503, "warm_failed", f"the tier pod refused the warm: {response.status} {code}", 1)
        raise WarmFailed(502, "warm_failed", "no tier pod accepted the connection")

    # -- entry point ---------------------------------------------------------------------------------------------

    async def handle(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        route: TenantRoute,
        request_id: bytes,
        payload: bytes | None,
        started: float,
    ) -> int:
        try:
            body = json.loads(payload) if payload else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if route.state in ARCHIVED_STATES:
            return await self._archived(send, route, request_id, body, started)
        try:
            ticket = self.warmer.enter(route.tenant_id, route.generation)
        except QueueFull as exc:
            return await _refuse(send, 503, "warm_queue_full", str(exc), retry_after=1)
        try:
            blob = await self._blob(route)
            message = coldanswer.last_user_message(body)
            if blob is not None and message is not None:
                return await self._answer_from_blob(send, receive, ticket, route, request_id, body, blob, started)
            return await self._wait(scope, send, receive, ticket, route, request_id, payload, body, started)
        finally:
            if not ticket.left and not ticket.future.done() and not ticket.handed_off:
                ticket.leave()

    async def _blob(self, route: TenantRoute) -> dict[str, Any] | None:
        if route.security_mode == "mobile_only":
            return None  # the platform cannot read a mobile_only tenant's memory: never a blob
        blob = await self.blobs.get(route.tenant_id)
        return blob.doc if blob is not None else None

    # -- blob ----------------------------------------------------------------------------------------------------

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
            await send_json(send, 200, coldanswer.completion(answer, request_id=rid, kind="blob"), headers)
            metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - started)
            return 200
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
        await _body(send, coldanswer.status_event(coldanswer.WARMING, cold_start="blob"))
        metrics.cold_start_ttfb.labels("blob").observe(time.perf_counter() - started)
        for part in coldanswer.chunks(answer, request_id=rid, kind="blob"):
            await _body(send, part)
        # The answer is out; the stream stays open until the message is stored, so the client knows it was.
        if not await _until(delivery, receive):
            return 200  # the client left; the delivery carries on without it
        result = delivery.result()
        if result is None:
            await _body(send, coldanswer.status_event("delivered", request_id=rid))
        else:
            await _body(send, coldanswer.error_event(result.code, f"your message was not stored: {result.message}"))
        await _body(send, coldanswer.DONE, more=False)
        return 200

    async def _deliver(
        self, ticket: Ticket, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        """Store the message once the pod is warm: None on success, else why not (after retries)."""
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
            error = await self._post_delivery(pod, route, request_id, messages, answer)
            if error is None or error.code != "delivery_unavailable":
                break
        if error is not None:
            metrics.deliveries.labels("failed").inc()
            log.warning(
                "message %s for %s answered from the blob was not stored: %s", request_id, route.tenant_id, error
            )
        return error

    async def _post_delivery(
        self, pod: str, route: TenantRoute, request_id: str, messages: list[Any], answer: str
    ) -> WarmFailed | None:
        lock = self._delivery_locks.get(route.tenant_id)
        if lock is None:
            lock = self._delivery_locks[route.tenant_id] = asyncio.Lock()
        assert self.gw.session is not None
        doc = {"generation": route.generation, "request_id": request_id, "messages": messages, "reply": answer}
        async with lock:  # one tenant's deliveries reach its store in arrival order
            for attempt in range(DELIVERY_ATTEMPTS):
                try:
                    async with self.gw.session.post(
                        f"http://{pod}/internal/deliver/{route.tenant_id}",
                        json=doc,
                        headers=self._service_headers(route, request_id),
                        timeout=aiohttp.ClientTimeout(total=self.warm_timeout),
                    ) as response:
                        raw = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue  # idempotent by request id: a retry after a lost answer stores nothing twice
                if response.status == 200:
                    stored = json.loads(raw).get("delivered", False)
                    metrics.deliveries.labels("stored" if stored else "duplicate").inc()
                    return None
                if response.status == 503 or _error_code(raw) in NOT_HOT_CODES:
                    return WarmFailed(503, "delivery_unavailable", f"the pod answered {response.status}")
                return WarmFailed(502, "delivery_refused", f"the pod refused the message: {_error_code(raw)}")
        return WarmFailed(503, "delivery_unavailable", "the pod did not answer")

    # -- wait ----------------------------------------------------------------------------------------------------

    async def _wait(
        self,
        scope: dict[str, Any],
        send: Send,
        receive: Receive,
        ticket: Ticket,
        route: TenantRoute,
        request_id: bytes,
        payload: bytes | None,
        body: Any,
        started: float,
    ) -> int:
        metrics.cold_starts.labels("wait").inc()
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
            await _body(send, coldanswer.status_event(coldanswer.WARMING, cold_start="wait"))
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - started)
        ready = asyncio.ensure_future(ticket.ready())
        try:
            if not await _until(ready, receive):
                return 499
            pod = ready.result()
        except WarmFailed as exc:
            if stream:
                await _body(send, coldanswer.error_event(exc.code, exc.message), more=False)
                return 200
            return await _refuse(send, exc.status, exc.code, exc.message, retry_after=exc.retry_after)
        finally:
            ready.cancel()
        assert self.gw.session is not None
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        try:
            response = await asyncio.wait_for(
                self.gw.session.post(
                    f"http://{pod}{target}",
                    data=payload,
                    headers=self.gw._upstream_headers(scope, route, request_id),
                ),
                self.gw.timeouts.response_headers,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            code, message = "upstream_error", f"the warm pod failed: {type(exc).__name__}"
            if stream:
                await _body(send, coldanswer.error_event(code, message), more=False)
                return 200
            return await _refuse(send, 502, code, message)
        if not stream:
            metrics.cold_start_ttfb.labels("wait").observe(time.perf_counter() - started)
            out = [*strip_response(response.raw_headers), mark, (b"x-request-id", request_id)]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            await stream_response(response, send, receive)
            return response.status
        if response.status != 200:
            raw = await response.read()
            response.release()
            await _body(
                send,
                coldanswer.error_event(_error_code(raw) or "upstream_error", raw[:500].decode("utf-8", "replace")),
                more=False,
            )
            return 200
        await stream_response(response, send, receive)
        return 200

    # -- archived ------------------------------------------------------------------------------------------------

    async def _archived(self, send: Send, route: TenantRoute, request_id: bytes, body: Any, started: float) -> int:
        metrics.cold_starts.labels("archived").inc()
        self._request_restore(route.tenant_id)
        blob = await self._blob(route)
        message = coldanswer.last_user_message(body)
        headers = [(b"retry-after", str(RESTORE_RETRY_AFTER).encode()), (b"x-request-id", request_id)]
        if blob is None or message is None:
            status = await _refuse(
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
            await send_json(send, 200, coldanswer.completion(answer, request_id=rid, kind="archived"), headers)
        else:
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
            await _body(send, coldanswer.status_event("restoring", cold_start="blob"))
            for part in coldanswer.chunks(answer, request_id=rid, kind="archived"):
                await _body(send, part)
            await _body(
                send,
                coldanswer.status_event("restoring", delivered=False, retry_after=RESTORE_RETRY_AFTER),
            )
            await _body(send, coldanswer.DONE, more=False)
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
                result = await sync_to_async(self.restore_fn, thread_sensitive=False)(tenant_id)
                metrics.restores_requested.labels(result).inc()
            except Exception:
                metrics.restores_requested.labels("failed").inc()
                self._restores.pop(tenant_id, None)
                log.exception("requesting the restore of %s failed", tenant_id)
            finally:
                self._restoring.pop(tenant_id, None)

        self._restoring[tenant_id] = self._spawn(run())


# -- helpers -----------------------------------------------------------------------------------------------------


def _error_code(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        return str(doc["error"]["code"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ""


async def _body(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _refuse(send: Send, status: int, code: str, message: str, *, retry_after: int | None = None) -> int:
    extra = [(b"retry-after", str(retry_after).encode())] if retry_after is not None else None
    await send_error(send, status, code, message, extra)
    return status


async def _until(task: "asyncio.Future[Any]", receive: Receive) -> bool:
    """Wait for `task`; False if the client disconnected first (the task is left running)."""
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        return task.done()
    finally:
        watcher.cancel()
