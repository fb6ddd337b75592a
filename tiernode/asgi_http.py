"""The node's raw-ASGI HTTP helpers: request parsing (headers, JSON bodies, ids) and JSON responses and errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


class ClientGone(Exception):
    pass


def allow_methods(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HttpError(
            405, "method_not_allowed", f"{method} is not allowed here", [(b"allow", ", ".join(allowed).encode())]
        )


def header_value(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HttpError(400, "invalid_tenant", f"{what} must be a UUID") from None


def int_or(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def parse_generation(body: Any) -> int:
    generation = body.get("generation") if isinstance(body, dict) else None
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise HttpError(400, "invalid_generation", "generation must be a positive integer")
    return generation


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> Any:
    declared = header_value(scope, b"content-length")
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


def error_doc(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def send_json(send: Send, status: int, doc: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, json.dumps(doc, separators=(",", ":")).encode(), b"application/json", headers)


async def respond(
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
