"""Fixtures for the tier node: an in-process ASGI driver, a controllable clock, and a fake platform peer.

The fake platform is a real HTTP server in a thread (a peer process stand-in that records what the node sends),
not a mock of the node's internals. Async tests run on a fresh event loop each (see ``pytest_pyfunc_call``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from core.pod_credentials import proxy_credential
from tiernode.app import NodeApp
from tiernode.config import NodeConfig
from tiernode.store import TenantStore

TOKEN = "test-service-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}  # the internal listener's credential
PROXY_AUTH = {"authorization": f"Bearer {proxy_credential(TOKEN)}"}  # the public listener's (the gateway's)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), timeout=60))
        return True
    return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[str]:
        """SSE payloads; asserts the framing (every event is one ``data: ...`` line ended by a blank line)."""
        text = self.body.decode()
        assert text.endswith("\n\n"), text[-50:]
        frames = text[:-2].split("\n\n")
        for frame in frames:
            assert frame.startswith("data: ") and "\n" not in frame, frame
        return [frame[len("data: ") :] for frame in frames]


class AsgiClient:
    """Drives the node's two ASGI apps in-process, as its two servers would: ``/internal/...`` goes to the internal
    listener with the service credential, everything else to the public one with the proxy credential, unless the
    test names the `listener` (and gives its own headers)."""

    def __init__(self, app: NodeApp) -> None:
        self.app = app

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        chunk_size: int = 0,
        listener: str | None = None,
    ) -> Response:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        body = body or b""
        listener = listener or ("internal" if path.startswith("/internal/") else "public")
        credential = AUTH if listener == "internal" else PROXY_AUTH
        hdrs = {**(credential if auth else {}), **(headers or {})}
        if body:
            hdrs.setdefault("content-type", "application/json")
            if not chunk_size:
                hdrs.setdefault("content-length", str(len(body)))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),  # as a server decodes it; the raw target stays in raw_path
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)] if chunk_size else [body]
        queue: list[dict[str, Any]] = [
            {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)
        ]
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if queue:
                return queue.pop(0)
            await done.wait()
            return {"type": "http.disconnect"}

        status, headers_out, chunks = 0, {}, []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers_out
            if message["type"] == "http.response.start":
                status = message["status"]
                headers_out = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await (self.app.internal if listener == "internal" else self.app.public)(scope, receive, send)
        done.set()
        return Response(status, headers_out, b"".join(chunks))

    async def warm(self, tenant_id: uuid.UUID, generation: int = 1) -> Response:
        return await self.request("POST", f"/internal/warm/{tenant_id}", json_body={"generation": generation})

    async def evict(self, tenant_id: uuid.UUID, generation: int = 1) -> Response:
        return await self.request("POST", f"/internal/evict/{tenant_id}", json_body={"generation": generation})

    async def chat(
        self, tenant_id: uuid.UUID, text: str, *, generation: int | None = None, stream: bool = False
    ) -> Response:
        headers = {"x-percolate-tenant": str(tenant_id)}
        if generation is not None:
            headers["x-percolate-generation"] = str(generation)
        body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
        return await self.request("POST", "/v1/chat/completions", json_body=body, headers=headers)


@contextlib.asynccontextmanager
async def running(app: NodeApp) -> AsyncIterator[AsgiClient]:
    await app.startup()
    try:
        yield AsgiClient(app)
    finally:
        await app.shutdown()


def node_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "PERCOLATE_TENANT_TIER": "B",
        "TENANT_DATA_ROOT": str(tmp_path / "tenant-data"),
        "OBJECT_STORE_ROOT": str(tmp_path / "objects"),
        "PLATFORM_URL": "",
        "PLATFORM_SERVICE_TOKEN": TOKEN,
        "POD_ID": "tier-b-test-0",
        "PERCOLATE_REPORT_BACKOFF_SECONDS": "0.02",
        "PERCOLATE_REPORT_BACKOFF_MAX_SECONDS": "0.1",
        "PERCOLATE_PLATFORM_TIMEOUT_SECONDS": "2",
    }
    env.update(overrides)
    return env


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_node(tmp_path: Path, clock: FakeClock) -> Callable[..., NodeApp]:
    """A node on the test's clock (no sweeper: tests sweep); ``open_store`` stands in for ``TenantStore``."""

    def make(*, open_store: Callable[..., TenantStore] = TenantStore, **overrides: str) -> NodeApp:
        cfg = NodeConfig.from_env(node_env(tmp_path, **overrides))
        return NodeApp(cfg, clock=clock, run_sweeper=False, open_store=open_store)

    return make


# -- the fake platform -------------------------------------------------------------------------------------------


@dataclass
class FakePlatform:
    """Records state reports; hands out keys; can be down (503), refuse stale generations, or be mobile_only."""

    token: str = TOKEN
    down: bool = False
    reports: list[dict[str, Any]] = field(default_factory=list)
    key_requests: int = 0
    keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    mobile_only: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)
    key_delay: float = 0.0  # seconds each key answer takes (a slow platform)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def key_for(self, tenant_id: uuid.UUID | str) -> tuple[str, bytes]:
        with self.lock:
            return self.keys.setdefault(str(tenant_id), ("k1", os.urandom(32)))

    def reports_for(self, tenant_id: uuid.UUID) -> list[tuple[str, int]]:
        with self.lock:
            return [(r["state"], r["generation"]) for r in self.reports if r["tenant_id"] == str(tenant_id)]

    def handle(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 503, {"error": {"code": "unavailable", "message": "down"}}
        if auth != f"Service {self.token}":
            return 401, {"error": {"code": "not_authenticated", "message": "no"}}
        parts = path.split("?")[0].strip("/").split("/")  # api internal tenants {id} state|key
        if len(parts) != 5 or parts[:3] != ["api", "internal", "tenants"]:
            return 404, {"error": {"code": "not_found", "message": path}}
        tenant_id, what = parts[3], parts[4]
        if what == "state" and method == "POST":
            doc = json.loads(body)
            if tenant_id in self.stale:
                return 409, {"error": {"code": "stale_generation", "message": "stale"}}
            with self.lock:
                self.reports.append({"tenant_id": tenant_id, **doc})
            return 200, {"state": doc["state"], "generation": doc["generation"]}
        if what == "key" and method == "GET":
            with self.lock:
                self.key_requests += 1
            time.sleep(self.key_delay)
            if tenant_id in self.mobile_only:
                return 409, {"error": {"code": "conflict", "message": "mobile_only"}}
            key_id, key = self.key_for(tenant_id)
            return 200, {"key_id": key_id, "key": base64.b64encode(key).decode()}
        return 405, {"error": {"code": "method_not_allowed", "message": method}}

    def start(self, port: int = 0) -> FakePlatform:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                status, doc = platform.handle(
                    self.command, self.path, self.headers.get("authorization", ""), self.rfile.read(length)
                )
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform().start()
    yield fake
    fake.stop()


def sample(app: NodeApp, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling the event loop, not sleeping the test) until a background effect is visible."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
