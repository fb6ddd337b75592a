"""The node's routes, as two raw ASGI apps (no framework: a dozen routes do not need one, and the hot path stays lean).

The node listens twice (``python -m tiernode``), and each listener has only its own routes:

- **public** (``PORT``): ``POST /v1/chat/completions``, the one route the gateway forwards client requests to, with
  the proxy credential (``core.pod_credentials``); the tenant comes from ``X-Percolate-Tenant`` and the
  optional ``X-Percolate-Generation``, both set by the gateway.
- **internal** (``INTERNAL_PORT``): ``POST /internal/warm/{id}``, ``POST /internal/evict/{id}``,
  ``POST /internal/deliver/{id}`` (idempotent by request id), ``GET /internal/tenants``, with the service credential
  (``PLATFORM_SERVICE_TOKEN``): the platform, the workers and the gateway's own pod calls.

Both answer ``GET /health``, ``/ready`` and ``/metrics`` without a credential. A path of the other listener is a 404
there whatever the credential, and a credential of the other listener is a 401. Errors are JSON
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from core.pod_credentials import proxy_credential
from tiernode.asgi_http import (
    ClientGone,
    HttpError,
    Receive,
    Scope,
    Send,
    allow_methods,
    error_doc,
    header_value,
    parse_uuid,
    respond,
    send_json,
)
from tiernode.blob import ObjectStore, object_store_from_config
from tiernode.chat_endpoint import ChatEndpoint
from tiernode.config import NodeConfig
from tiernode.deletion_cost import SERVICE_ACCOUNT_DIR, DeletionCostWriter
from tiernode.internal_endpoints import InternalEndpoints
from tiernode.manager import ManagerError, TenantManager
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import PlatformClient, StateReporter
from tiernode.store import TenantStore

log = logging.getLogger("tiernode.app")

_TENANT_ROUTE = re.compile(r"^/internal/(warm|evict)/([^/]+)$")
_DELIVER_ROUTE = re.compile(r"^/internal/deliver/([^/]+)$")
CHAT_PATH = "/v1/chat/completions"
REPORT_DRAIN_SECONDS = 5.0  # at shutdown, after the tenants: time left to deliver their state reports

Route = Callable[[Scope, Receive, Send], Awaitable[None]]


class NodeApp(InternalEndpoints, ChatEndpoint):
    """Lifecycle, ASGI dispatch, routing and auth; the endpoints are in internal_endpoints and chat_endpoint."""

    def __init__(
        self,
        cfg: NodeConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        object_store: ObjectStore | None = None,
        run_sweeper: bool = True,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
        open_store: Callable[..., TenantStore] = TenantStore,
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
        self.object_store = object_store if object_store is not None else object_store_from_config(cfg)
        self.manager = TenantManager(
            cfg,
            metrics=self.metrics,
            reporter=self.reporter,
            object_store=self.object_store,
            key_fetcher=self.platform.fetch_key if self.platform.enabled else None,
            clock=clock,
            open_store=open_store,
        )
        # In a cluster: keeps the pod's pod-deletion-cost at its hot count, so a scale-down removes the emptiest pods.
        self.deletion_cost = DeletionCostWriter.in_cluster(
            cfg,
            lambda: self.manager.hot_count,
            on_result=lambda result: self.metrics.deletion_cost_patches.labels(result=result).inc(),
            sa_dir=service_account_dir,
        )
        self.run_sweeper = run_sweeper
        self.started = False
        self._sweeper: asyncio.Task[None] | None = None
        self._service_token = cfg.service_token.encode()
        self._proxy_token = proxy_credential(cfg.service_token).encode()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        self.cfg.data_root.mkdir(parents=True, exist_ok=True)
        if self.run_sweeper and self.cfg.sweep_interval_seconds > 0:
            self._sweeper = asyncio.create_task(self.manager.run_sweeper(), name="idle-sweeper")
        if self.deletion_cost is not None:
            self.deletion_cost.start()
        elif self.cfg.kube_api_url:
            log.warning("in a cluster without POD_NAME or a service-account token: pod-deletion-cost is not kept")
        if not self.platform.enabled:
            log.warning("PLATFORM_URL is not set: no state reports, no data keys, no context blobs")
        self.started = True
        log.info("tier node %s (tier %s, max hot %d) ready", self.cfg.pod_id, self.cfg.tier, self.cfg.max_hot_tenants)

    async def shutdown(self) -> None:
        if self.deletion_cost is not None:
            await self.deletion_cost.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.manager.shutdown(deadline=self.cfg.drain_seconds)
        if not await self.reporter.drain(timeout=REPORT_DRAIN_SECONDS):
            log.warning("shutting down with %d state reports unsent", len(self.reporter.pending))
        await self.reporter.close()

    @property
    def ready(self) -> bool:
        return self.started and not self.manager.draining

    # -- ASGI: one app per listener -----------------------------------------------------------------------------

    async def public(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The public listener's ASGI app (``PORT``)."""
        await self._serve(scope, receive, send, self._route_public)

    async def internal(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The internal listener's ASGI app (``INTERNAL_PORT``)."""
        await self._serve(scope, receive, send, self._route_internal)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send, route)
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

    async def _http(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if not await self._probe(scope, tracked_send):
                await route(scope, receive, tracked_send)
        except HttpError as exc:
            if not started:
                await send_json(send, exc.status, error_doc(exc.code, exc.message), exc.headers)
        except ManagerError as exc:
            if not started:
                retry = [(b"retry-after", b"1")] if exc.status == 503 else []
                await send_json(send, exc.status, error_doc(exc.code, str(exc)), retry)
        except ClientGone:
            return
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(send, 500, error_doc("internal", "internal error"))

    async def _probe(self, scope: Scope, send: Send) -> bool:
        """``/health``, ``/ready`` and ``/metrics`` (both listeners, no credential); False for any other path."""
        method, path = scope["method"], scope["path"]
        if path == "/health":
            allow_methods(method, "GET", "HEAD")
            await send_json(send, 200, {"status": "ok"})
        elif path == "/ready":
            allow_methods(method, "GET", "HEAD")
            ready = self.ready
            doc = {
                "status": "ready" if ready else ("draining" if self.manager.draining else "starting"),
                "tier": self.cfg.tier,
                "pod_id": self.cfg.pod_id,
                "hot": self.manager.hot_count,
                "max_hot": self.manager.max_hot,
            }
            await send_json(send, 200 if ready else 503, doc)
        elif path == "/metrics":
            allow_methods(method, "GET", "HEAD")
            await respond(send, 200, self.metrics.render(), self.metrics.content_type.encode())
        else:
            return False
        return True

    async def _route_public(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != CHAT_PATH or scope.get("raw_path", CHAT_PATH.encode()) != CHAT_PATH.encode():
            raise HttpError(404, "not_found", "no such route on this listener")
        self._authenticate(scope, self._proxy_token)
        allow_methods(scope["method"], "POST")
        await self._chat(scope, receive, send)

    async def _route_internal(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if scope.get("raw_path", path.encode()) != path.encode() or not _internal(path):
            raise HttpError(404, "not_found", "no such route on this listener")
        self._authenticate(scope, self._service_token)
        if m := _TENANT_ROUTE.match(path):
            allow_methods(method, "POST")
            await self._warm_or_evict(m.group(1), m.group(2), scope, receive, send)
        elif m := _DELIVER_ROUTE.match(path):
            allow_methods(method, "POST")
            await self._deliver(parse_uuid(m.group(1), "tenant id in the path"), scope, receive, send)
        else:  # /internal/tenants
            allow_methods(method, "GET")
            await self._list_tenants(send)

    def _authenticate(self, scope: Scope, token: bytes) -> None:
        scheme, _, given = header_value(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise HttpError(
                401, "unauthorized", "the credential is missing or wrong", [(b"www-authenticate", b"Bearer")]
            )


def create_app(env: Mapping[str, str] | None = None, **kwargs: Any) -> NodeApp:
    return NodeApp(NodeConfig.from_env(env), **kwargs)


# -- routing -----------------------------------------------------------------------------------------------------


def _internal(path: str) -> bool:
    return bool(_TENANT_ROUTE.match(path) or _DELIVER_ROUTE.match(path)) or path == "/internal/tenants"
