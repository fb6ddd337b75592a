"""The platform's and the gateway's calls to the node under ``/internal/`` (warm, evict, deliver, tenants)."""

from __future__ import annotations

import re
import uuid

from tiernode import chat
from tiernode.asgi_http import HttpError, Receive, Scope, Send, parse_generation, parse_uuid, read_json_body, send_json
from tiernode.config import NodeConfig
from tiernode.manager import TenantManager

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class InternalEndpoints:
    """Mixin of NodeApp (which sets ``cfg`` and ``manager``)."""

    cfg: NodeConfig
    manager: TenantManager

    async def _warm_or_evict(self, action: str, raw_tenant_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        tenant_id = parse_uuid(raw_tenant_id, "tenant id in the path")
        generation = parse_generation((await read_json_body(scope, receive, self.cfg.max_body_bytes)) or {})
        if action == "warm":
            t, seconds, source = await self.manager.ensure_hot(tenant_id, generation)
            await send_json(
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
            await send_json(send, 200, await self.manager.evict(tenant_id, generation))

    async def _list_tenants(self, send: Send) -> None:
        await send_json(
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

    async def _deliver(self, tenant_id: uuid.UUID, scope: Scope, receive: Receive, send: Send) -> None:
        """Store a message the gateway answered from the context blob while the tenant was cold, exactly once.

        Body: ``{"generation", "request_id", "messages": [...], "reply"}``. A repeat with the same request id (a
        retry after a lost answer) stores nothing and answers ``"delivered": false`` with the first seq.
        """
        body = (await read_json_body(scope, receive, self.cfg.max_body_bytes)) or {}
        generation = parse_generation(body)
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
        await send_json(
            send, 200, {"tenant_id": str(tenant_id), "request_id": request_id, "seq": seq, "delivered": stored}
        )
