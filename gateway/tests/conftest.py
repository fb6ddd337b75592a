"""Drive the gateway ASGI app in-process against real upstream HTTP servers (aiohttp peers on loopback ports)."""

import asyncio
import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings

from gateway.auth.tokens import AUDIENCE, mint_platform_token


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    chunks: list[bytes] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    body: list[bytes] | None = None,
    disconnect_after_chunks: int | None = None,
    client_gone: asyncio.Event | None = None,
    reply: Reply | None = None,
    observe: Callable[[dict[str, Any]], None] | None = None,
    http_version: str | None = None,
    received: list[dict[str, Any]] | None = None,
    query_string: bytes = b"",
) -> Reply:
    """One HTTP request through the ASGI app, like an ASGI server would deliver it. `reply` fills in while the
    response streams (for callers that run this in the background); `observe` sees every message sent."""
    chunks = body or [b""]
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    reply = reply if reply is not None else Reply(0, {})
    gone = client_gone or asyncio.Event()

    async def receive() -> dict[str, Any]:
        if pending:
            message = pending.pop(0)
            if received is not None:
                received.append(message)
            return message
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if observe is not None:
            observe(message)
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.lower(): v for k, v in message["headers"]}
        elif message.get("body"):
            reply.chunks.append(message["body"])
            if disconnect_after_chunks is not None and len(reply.chunks) >= disconnect_after_chunks:
                gone.set()

    scope = {
        "type": "http",
        "method": method,
        "path": unquote(path),  # as a server decodes it; raw_path is what the client sent
        "raw_path": path.encode(),
        "query_string": query_string,
        "headers": [(k.lower(), v) for k, v in headers],
        "client": ("198.51.100.9", 5000),
        "scheme": "http",
    }
    if http_version is not None:
        scope["http_version"] = http_version
    await app(scope, receive, send)
    gone.set()  # the server closes the connection: any disconnect watcher ends
    return reply


CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = b'{"model": "percolate-reference", "messages": [{"role": "user", "content": "hi"}]}'


async def chat(app: Any, *, headers: list[tuple[bytes, bytes]] = (), body: bytes = CHAT_BODY, **kwargs: Any) -> Reply:  # type: ignore[assignment]
    """A chat request, the one route the gateway forwards to a pod."""
    return await call(app, "POST", CHAT_PATH, headers=headers, body=[body], **kwargs)


class Upstream:
    """A real HTTP server standing in for a tier pod; records what reached it."""

    def __init__(self, handler: Callable[[web.Request], Any] | None = None) -> None:
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.closed_streams = 0
        self._handler = handler
        self.runner: web.AppRunner | None = None
        self.address = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        self.bodies.append(await request.read())
        if self._handler is not None:
            return await self._handler(request)
        return web.json_response(
            {"ok": True, "tenant": request.headers.get("X-Percolate-Tenant")},
            headers={"Connection": "close, X-Hop", "X-Hop": "secret", "X-Node": "n1"},
        )

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def device_keys() -> tuple[Ed25519PrivateKey, str, str]:
    def b64(key: Any) -> str:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.urlsafe_b64encode(raw).decode()

    private = Ed25519PrivateKey.generate()
    return private, b64(private), b64(X25519PrivateKey.generate())


def device_token(device_id: uuid.UUID, private: Ed25519PrivateKey, tenant_id: uuid.UUID, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": str(tenant_id), "aud": AUDIENCE, "iss": str(device_id), "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, private, algorithm="EdDSA", headers={"kid": str(device_id)})


def bearer(tenant_id: uuid.UUID) -> tuple[bytes, bytes]:
    token = mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=tenant_id)
    return (b"authorization", f"Bearer {token}".encode())


@pytest.fixture
def gateway_settings(settings: Any) -> Any:
    """Tier pods are set per test; rate limits generous unless a test lowers them."""
    settings.GATEWAY_TIER_PODS = {"A": [], "B": [], "C": []}
    settings.GATEWAY_TIER_DNS = {}
    # The stand-in pods here do not implement the tier-pod contract (warm, deliver): the cold path is tested with a
    # real tier node in test_coldstart*.py, which turns it back on.
    settings.GATEWAY_COLD_PATH_ENABLED = False
    return settings
