"""The overview's WebSocket through a real uvicorn and aiohttp's client (origin check, session auth, routing): staff
with the view permission get a snapshot and then the changes; everyone else is refused at the handshake (403)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from gateway.auth.tokens import mint_platform_token
from tenants.models import State, TenantState

ORIGIN = "http://127.0.0.1:8000"
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_close=10)


@pytest.fixture(autouse=True)
def fresh_snapshot(settings):
    settings.OVERVIEW_REFRESH_SECONDS = 0.1
    cache.clear()


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def _viewer() -> User:
    user = User.objects.create_user("viewer", "viewer@example.com", "viewer-password-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tenant", content_type__app_label="tenants"))
    return user


@asynccontextmanager
async def _socket(server: str, headers: dict[str, str]) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    url = f"ws://{server}/ws/overview/"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers, timeout=WS_TIMEOUT) as ws:
        yield ws


def _handshake_status(server: str, headers: dict[str, str], path: str = "/ws/overview/") -> int:
    async def run() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"ws://{server}{path}", headers=headers, timeout=WS_TIMEOUT):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    return asyncio.run(run())


def test_staff_viewer_gets_the_snapshot_then_its_changes(asgi_server: str, make_tenant) -> None:
    tenant = make_tenant(tier="C")
    headers = {"Origin": ORIGIN, "Cookie": _session_cookie(_viewer())}

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with _socket(asgi_server, headers) as ws:
            first = await ws.receive_json(timeout=10)
            await asyncio.to_thread(TenantState.objects.filter(tenant=tenant).update, state=State.ARCHIVED)
            second = await ws.receive_json(timeout=10)
            return first, second

    first, second = asyncio.run(run())
    assert first["tenants"]["rows"]["C"]["cold"] == 1
    assert second["tenants"]["rows"]["C"]["cold"] == 0
    assert second["tenants"]["rows"]["C"]["archived"] == 1
    assert second["tenants"]["rows"]["all"]["total"] == 1


@pytest.mark.parametrize("who", ["anonymous", "non-staff", "staff without view_tenant", "inactive staff", "gateway"])
def test_outsiders_are_refused_at_the_handshake(who: str, asgi_server: str, make_tenant) -> None:
    headers = {"Origin": ORIGIN}
    path = "/ws/overview/"
    if who == "non-staff":
        headers["Cookie"] = _session_cookie(User.objects.create_user("plain", "plain@example.com", "plain-pass-123"))
    elif who == "staff without view_tenant":
        staff = User.objects.create_user("s", "s@example.com", "s-pass-1234", is_staff=True)
        headers["Cookie"] = _session_cookie(staff)
    elif who == "inactive staff":
        user = _viewer()
        headers["Cookie"] = _session_cookie(user)
        User.objects.filter(pk=user.pk).update(is_active=False)
    elif who == "gateway":  # a tenant's gateway token, as a header and as a query parameter
        token = mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=make_tenant().id)
        headers["Authorization"] = f"Bearer {token}"
        path += f"?token={token}"
    assert _handshake_status(asgi_server, headers, path) == 403


def test_another_sites_page_is_refused_even_with_a_staff_session(asgi_server: str) -> None:
    headers = {"Origin": "http://evil.example.com", "Cookie": _session_cookie(_viewer())}
    assert _handshake_status(asgi_server, headers) == 403


@pytest.mark.skipif(not settings.REDIS_URL, reason="the in-memory layer reaches only its own process")
def test_a_job_change_reaches_open_pages_at_once_through_the_channel_layer(asgi_server: str, make_tenant) -> None:
    from archival.services import archive_request
    from core.audit import Actor

    settings.OVERVIEW_REFRESH_SECONDS = 60  # no poll during the test: only the nudge can bring the change
    tenant = make_tenant()
    headers = {"Origin": ORIGIN, "Cookie": _session_cookie(_viewer())}

    async def run() -> dict[str, Any]:
        async with _socket(asgi_server, headers) as ws:
            await ws.receive_json(timeout=10)
            await asyncio.to_thread(archive_request, tenant_id=tenant.id, actor=Actor.system("test"), enqueue=False)
            return await ws.receive_json(timeout=5)

    pushed = asyncio.run(run())
    assert pushed["archival"]["counts"]["pending"] == 1
    assert pushed["archival"]["recent"][0]["tenant"] == str(tenant.id)
