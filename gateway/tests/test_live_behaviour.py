"""Behaviours that need time or a second protocol: cache invalidation over Redis, WebSocket, long streams."""

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from django.conf import settings

from core.pod_credentials import proxy_credential
from gateway.app import Gateway
from gateway.tests.conftest import Upstream, bearer, call, chat
from gateway.tests.test_app import _with_gateway, run
from tenants.events import CHANNEL
from tenants.services import tenant_suspend

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_tier_or_status_change_reaches_a_running_gateway_within_a_second(gateway_settings, make_tenant, actor):
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/v1/models", headers=[bearer(tenant.id)])).status == 200
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        deadline = time.monotonic() + 5
        while (await client.pubsub_numsub(CHANNEL))[0][1] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await client.aclose()
        await asyncio.to_thread(tenant_suspend, tenant_id=tenant.id, actor=actor)
        changed_at = time.monotonic()
        while True:
            reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant.id)])
            if reply.status == 403:
                break
            assert time.monotonic() - changed_at < 1.0, "suspension did not reach the gateway within a second"
            await asyncio.sleep(0.02)

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_websocket_conversation_through_the_gateway(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    seen_headers: dict[str, str] = {}

    async def echo(request: web.Request) -> web.WebSocketResponse:
        seen_headers.update({k.lower(): v for k, v in request.headers.items()})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
        return ws

    async def scenario(gateway: Gateway) -> None:
        upstream = Upstream(echo)
        gateway.discovery.pods("B").pods = (await upstream.start(),)
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: list[dict[str, Any]] = []
        for message in (
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.receive", "text": "there"},
        ):
            inbox.put_nowait(message)

        async def send(message: dict[str, Any]) -> None:
            outbox.append(message)
            if len([m for m in outbox if m["type"] == "websocket.send"]) == 2:
                inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

        scope = {
            "type": "websocket",
            "path": "/v1/realtime",
            "query_string": b"",
            "headers": [bearer(tenant.id)],
            "client": ("198.51.100.9", 1),
            "scheme": "ws",
        }
        await asyncio.wait_for(gateway(scope, inbox.get, send), 10)
        assert outbox[0]["type"] == "websocket.accept"
        assert [m["text"] for m in outbox if m["type"] == "websocket.send"] == ["echo:hi", "echo:there"]
        assert seen_headers["x-percolate-tenant"] == str(tenant.id)
        assert seen_headers["authorization"] == f"Bearer {proxy_credential(settings.PLATFORM_SERVICE_TOKEN)}"
        await upstream.stop()

    run(_with_gateway(gateway_settings, {}, scenario))


def test_websocket_without_a_token_is_closed(gateway_settings) -> None:
    async def scenario(gateway: Gateway) -> None:
        sent: list[dict[str, Any]] = []
        inbox = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await gateway({"type": "websocket", "path": "/v1/realtime", "headers": [], "query_string": b""}, receive, send)
        assert sent == [{"type": "websocket.close", "code": 4401}]

    run(_with_gateway(gateway_settings, {}, scenario))


@pytest.mark.parametrize("raw", [b"/internal/tenants", b"/%69nternal/tenants", b"/v1/../internal/tenants", b"/"])
def test_a_websocket_to_any_path_but_the_realtime_api_is_closed_unforwarded(gateway_settings, make_tenant, raw) -> None:
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        sent: list[dict[str, Any]] = []
        inbox = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/internal/tenants", "raw_path": raw, "query_string": b""}
        await gateway({**scope, "headers": [bearer(tenant.id)], "client": ("198.51.100.9", 1)}, receive, send)
        assert sent == [{"type": "websocket.close", "code": 4404}] and pod.seen == []

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_slow_healthy_stream_is_not_cut_by_the_header_or_idle_timeouts(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    gateway_settings.GATEWAY_RESPONSE_HEADER_TIMEOUT_SECONDS = 0.8
    gateway_settings.GATEWAY_IDLE_TIMEOUT_SECONDS = 0.8

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(8):  # 8 x 0.2 s: twice the timeouts in total, never idle for more than a quarter of one
            await response.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.2)
        await response.write(b"data: [DONE]\n\n")
        return response

    async def scenario(gateway: Gateway) -> None:
        upstream = Upstream(slow)
        gateway.discovery.pods("B").pods = (await upstream.start(),)
        reply = await chat(gateway, headers=[bearer(tenant.id)])
        assert reply.status == 200 and reply.body.endswith(b"data: [DONE]\n\n")
        assert reply.body.count(b"data: ") == 9
        await upstream.stop()

    run(_with_gateway(gateway_settings, {}, scenario))


def test_an_upstream_that_stalls_before_headers_is_504(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    gateway_settings.GATEWAY_RESPONSE_HEADER_TIMEOUT_SECONDS = 0.3

    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    async def scenario(gateway: Gateway) -> None:
        upstream = Upstream(stall)
        gateway.discovery.pods("B").pods = (await upstream.start(),)
        reply = await chat(gateway, headers=[bearer(tenant.id)])
        assert reply.status == 504
        await upstream.stop()

    run(_with_gateway(gateway_settings, {}, scenario))
