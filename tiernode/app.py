"""The node's routes, as a raw ASGI app (no framework: a dozen routes do not need one, and the hot path stays lean).

Public: ``GET /health``, ``GET /ready``, ``GET /metrics``. Everything else needs the platform's service credential
(``Authorization: Bearer <PLATFORM_SERVICE_TOKEN>``): ``POST /internal/warm/{id}``, ``POST /internal/evict/{id}``,
``POST /internal/deliver/{id}`` (idempotent by request id), ``GET /internal/tenants``, ``POST /v1/chat/completions``
(tenant from ``X-Percolate-Tenant``, optional ``X-Percolate-Generation`` set by the gateway). Errors are JSON
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tiernode import chat
from tiernode.blob import ObjectStore, object_store_from_config
from tiernode.config import NodeConfig
from tiernode.manager import ManagerError, TenantManager
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import PlatformClient, StateReporter

log = logging.getLogger("tiernode.app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_TENANT_ROUTE = re.compile(r"^/internal/(warm|evict)/([^/]+)/?$")
_DELIVER_ROUTE = re.compile(r"^/internal/deliver/([^/]+)/?$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


class ClientGone(Exception):
    pass


class NodeApp:
    def __init__(
        self,
        cfg: NodeConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        object_store: ObjectStore | None = None,
        run_sweeper: bool = True,
    ) -> None:
        self.cfg = cfg
        self.metrics = NodeMetrics(tier=cfg.tier, pod_id=cfg.pod_id)
        self.platform = PlatformClient(
            cfg.platform_url, cfg.service_token, cfg.pod_id, timeout=cfg.platform_timeout_seconds
        )
        self.reporter = StateReporter(
            self.platform,
            backoff_initial=cfg.report_backoff_initial,
            backoff_max=cfg.report_backoff_max,
            on_result=lambda result: self.metrics.state_reports.labels(result=result).inc(),
            on_fenced=lambda tenant_id, generation: self.manager.fence(tenant_id, generation),
        )
        self.manager = TenantManager(
            cfg,
            metrics=self.metrics,
            reporter=self.reporter,
            object_store=object_store if object_store is not None else object_store_from_config(cfg),
            key_fetcher=self.platform.fetch_key if self.platform.enabled else None,
            clock=clock,
        )
        self.run_sweeper = run_sweeper
        self.started = False
        self._sweeper: asyncio.Task[None] | None = None
        self._token = cfg.service_token.encode()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        self.cfg.data_root.mkdir(parents=True, exist_ok=True)
        if self.run_sweeper and self.cfg.sweep_interval_seconds > 0:
            self._sweeper = asyncio.create_task(self.manager.run_sweeper(), name="idle-sweeper")
        if not self.platform.enabled:
            log.warning("PLATFORM_URL is not set: no state reports, no data keys, no context blobs")
        self.started = True
        log.info("tier node %s (tier %s, max hot %d) ready", self.cfg.pod_id, self.cfg.tier, self.cfg.max_hot_tenants)

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.manager.shutdown()
        if not await self.reporter.drain(timeout=5.0):
            log.warning("shutting down with %d state reports unsent", len(self.reporter.pending))
        await self.reporter.close()

    @property
    def ready(self) -> bool:
        return self.started and not self.manager.draining

    # -- ASGI --------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:  # websocket: not part of the node's contract
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._route(scope, receive, tracked_send)
        except HttpError as exc:
            if not started:
                await _json(send, exc.status, _error(exc.code, exc.message), exc.headers)
        except ManagerError as exc:
            if not started:
                retry = [(b"retry-after", b"1")] if exc.status == 503 else []
                await _json(send, exc.status, _error(exc.code, str(exc)), retry)
        except ClientGone:
            return
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _json(send, 500, _error("internal", "internal error"))

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path == "/health":
            _allow(method, "GET", "HEAD")
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/ready":
            _allow(method, "GET", "HEAD")
            ready = self.ready
            doc = {
                "status": "ready" if ready else ("draining" if self.manager.draining else "starting"),
                "tier": self.cfg.tier,
                "pod_id": self.cfg.pod_id,
                "hot": self.manager.hot_count,
                "max_hot": self.manager.max_hot,
            }
            await _json(send, 200 if ready else 503, doc)
            return
        if path == "/metrics":
            _allow(method, "GET", "HEAD")
            await _respond(send, 200, self.metrics.render(), self.metrics.content_type.encode())
            return
        if not _known(path):
            raise HttpError(404, "not_found", f"no route {path}")
        self._authenticate(scope)
        if m := _TENANT_ROUTE.match(path):
            _allow(method, "POST")
            tenant_id = _uuid(m.group(2), "tenant id in the path")
            generation = _generation((await _json_body(scope, receive, self.cfg.max_body_bytes)) or {})
            if m.group(1) == "warm":
                t, seconds, source = await self.manager.ensure_hot(tenant_id, generation)
                await _json(
                    send,
                    200,
                    {
                        "tenant_id": str(tenant_id),
                        "state": t.state,
                        "generation": t.generation,
                        "load_seconds": round(seconds, 6),
                        "source": source,
                    },
                )
            else:
                await _json(send, 200, await self.manager.evict(tenant_id, generation))
        elif m := _DELIVER_ROUTE.match(path):
            _allow(method, "POST")
            await self._deliver(_uuid(m.group(1), "tenant id in the path"), scope, receive, send)
        elif path == "/internal/tenants":
            _allow(method, "GET")
            await _json(
                send,
                200,
                {
                    "pod_id": self.cfg.pod_id,
                    "tier": self.cfg.tier,
                    "max_hot": self.manager.max_hot,
                    "hot_count": self.manager.hot_count,
                    "warm_count": self.manager.warm_count,
                    "tenants": self.manager.describe(),
                },
            )
        else:  # /v1/chat/completions
            _allow(method, "POST")
            await self._chat(scope, receive, send)

    def _authenticate(self, scope: Scope) -> None:
        scheme, _, token = _header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise HttpError(
                401, "unauthorized", "the service credential is missing or wrong", [(b"www-authenticate", b"Bearer")]
            )

    async def _deliver(self, tenant_id: uuid.UUID, scope: Scope, receive: Receive, send: Send) -> None:
        """Store a message the gateway answered from the context blob while the tenant was cold, exactly once.

        Body: ``{"generation", "request_id", "messages": [...], "reply"}``. A repeat with the same request id (a
        retry after a lost answer) stores nothing and answers ``"delivered": false`` with the first seq.
        """
        body = (await _json_body(scope, receive, self.cfg.max_body_bytes)) or {}
        generation = _generation(body)
        request_id, reply = body.get("request_id"), body.get("reply", "")
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            raise HttpError(400, "invalid_request_id", "request_id must be 1-128 characters of [A-Za-z0-9._-]")
        if not isinstance(reply, str):
            raise HttpError(400, "invalid_request", "reply must be a string")
        try:
            prompt = chat.parse_request({"messages": body.get("messages")}).last_user_message
        except chat.ChatRequestError as exc:
            raise HttpError(400, "invalid_request", str(exc)) from exc
        async with self.manager.lease(tenant_id, generation) as t:
            assert t.store is not None
            seq, stored = chat.deliver_exchange(t.store, request_id, prompt, reply)
        await _json(send, 200, {"tenant_id": str(tenant_id), "request_id": request_id, "seq": seq, "delivered": stored})

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_tenant = _header(scope, b"x-percolate-tenant")
        if not raw_tenant:
            raise HttpError(400, "missing_tenant", "X-Percolate-Tenant header is required")
        tenant_id = _uuid(raw_tenant, "X-Percolate-Tenant")
        raw_generation = _header(scope, b"x-percolate-generation")
        generation = _generation({"generation": _int_or(raw_generation)}) if raw_generation else None
        body = await _json_body(scope, receive, self.cfg.max_body_bytes)
        try:
            req = chat.parse_request(body)
        except chat.ChatRequestError as exc:
            raise HttpError(400, "invalid_request", str(exc)) from exc
        prompt = req.last_user_message
        async with self.manager.lease(tenant_id, generation) as t:
            assert t.store is not None
            reply, seq = chat.store_exchange(t.store, prompt)
        cid, created = chat.completion_id(str(tenant_id), seq), int(time.time())
        extra = [
            (b"x-percolate-pod", self.cfg.pod_id.encode()),
            (b"x-percolate-generation", str(t.generation).encode()),
        ]
        if not req.stream:
            await _json(
                send, 200, chat.completion(cid=cid, model=req.model, reply=reply, prompt=prompt, created=created), extra
            )
            return
        await self._stream(receive, send, cid, req.model, created, reply, extra)

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        cid: str,
        model: str,
        created: int,
        reply: str,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *extra,
                    ],
                }
            )
            parts = [chat.chunk(cid=cid, model=model, created=created, delta={"role": "assistant", "content": ""})]
            parts += [
                chat.chunk(cid=cid, model=model, created=created, delta={"content": tok}) for tok in chat.tokens(reply)
            ]
            parts.append(chat.chunk(cid=cid, model=model, created=created, delta={}, finish="stop"))
            for part in parts:
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": part, "more_body": True})
                if self.cfg.token_delay_seconds:
                    await asyncio.sleep(self.cfg.token_delay_seconds)
            await send({"type": "http.response.body", "body": chat.DONE, "more_body": False})
        finally:
            watcher.cancel()


def create_app(env: Mapping[str, str] | None = None, **kwargs: Any) -> NodeApp:
    return NodeApp(NodeConfig.from_env(env), **kwargs)


# -- helpers -----------------------------------------------------------------------------------------------------


def _known(path: str) -> bool:
    return bool(_TENANT_ROUTE.match(path) or _DELIVER_ROUTE.match(path)) or path in (
        "/internal/tenants",
        "/v1/chat/completions",
    )


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(
            405, "method_not_allowed", f"{method} is not allowed here", [(b"allow", ", ".join(allowed).encode())]
        )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HttpError(400, "invalid_tenant", f"{what} must be a UUID") from None


def _int_or(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _generation(body: Any) -> int:
    generation = body.get("generation") if isinstance(body, dict) else None
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise HttpError(400, "invalid_generation", "generation must be a positive integer")
    return generation


async def _json_body(scope: Scope, receive: Receive, limit: int) -> Any:
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise HttpError(413, "payload_too_large", f"the body is larger than {limit} bytes")
        chunks.append(body)
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "invalid_json", "the body is not valid JSON") from None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _json(send: Send, status: int, doc: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _respond(send, status, json.dumps(doc, separators=(",", ":")).encode(), b"application/json", headers)


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
