"""``POST /v1/chat/completions`` on the node: store the exchange in the tenant's store, answer (optionally as SSE)."""

from __future__ import annotations

import asyncio
import functools
import time

from tiernode import chat
from tiernode.asgi_http import (
    HttpError,
    Receive,
    Scope,
    Send,
    header_value,
    int_or,
    parse_generation,
    parse_uuid,
    read_json_body,
    send_json,
)
from tiernode.config import NodeConfig
from tiernode.manager import TenantManager


class ChatEndpoint:
    """Mixin of NodeApp (which sets ``cfg`` and ``manager``)."""

    cfg: NodeConfig
    manager: TenantManager

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_tenant = header_value(scope, b"x-percolate-tenant")
        if not raw_tenant:
            raise HttpError(400, "missing_tenant", "X-Percolate-Tenant header is required")
        tenant_id = parse_uuid(raw_tenant, "X-Percolate-Tenant")
        raw_generation = header_value(scope, b"x-percolate-generation")
        generation = parse_generation({"generation": int_or(raw_generation)}) if raw_generation else None
        body = await read_json_body(scope, receive, self.cfg.max_body_bytes)
        try:
            req = chat.parse_request(body)
        except chat.ChatRequestError as exc:
            raise HttpError(400, "invalid_request", str(exc)) from exc
        prompt = req.last_user_message
        async with self.manager.lease(tenant_id, generation) as t:
            assert t.store is not None
            t.requests += 1
            reply, seq = chat.store_exchange(t.store, prompt)
        cid, created = chat.completion_id(str(tenant_id), seq), int(time.time())
        extra = [
            (b"x-percolate-pod", self.cfg.pod_id.encode()),
            (b"x-percolate-generation", str(t.generation).encode()),
        ]
        if not req.stream:
            await send_json(
                send, 200, chat.completion(cid=cid, model=req.model, reply=reply, prompt=prompt, created=created), extra
            )
            return
        await self._stream(receive, send, _chunks(req, cid, created, prompt, reply), extra)

    async def _stream(self, receive: Receive, send: Send, parts: list[bytes], extra: list[tuple[bytes, bytes]]) -> None:
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
            for part in parts:
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": part, "more_body": True})
                if self.cfg.token_delay_seconds:
                    await asyncio.sleep(self.cfg.token_delay_seconds)
            await send({"type": "http.response.body", "body": chat.DONE, "more_body": False})
        finally:
            watcher.cancel()


def _chunks(req: chat.ChatRequest, cid: str, created: int, prompt: str, reply: str) -> list[bytes]:
    """The reply as chunks: the role, one per word, the finish, and the usage when include_usage asked for it."""
    chunk = functools.partial(chat.chunk, cid=cid, model=req.model, created=created, with_usage=req.include_usage)
    parts = [chunk(delta={"role": "assistant", "content": ""})]
    parts += [chunk(delta={"content": tok}) for tok in chat.tokens(reply)]
    parts.append(chunk(delta={}, finish="stop"))
    if req.include_usage:
        parts.append(chunk(delta=None, usage=chat.usage(prompt, reply)))
    return parts
