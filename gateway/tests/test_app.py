"""The gateway end to end in-process: real tenants in PostgreSQL, real Redis, real upstream servers."""

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp import web

from gateway import metrics
from gateway.app import Gateway
from gateway.hashing import ranked_pods
from gateway.tests.conftest import Upstream, bearer, call, device_keys, device_token
from tenants.device_services import device_register
from tenants.services import tenant_suspend

pytestmark = pytest.mark.django_db(transaction=True)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_gateway(settings: Any, tier_pods: dict[str, list[Upstream]], scenario: Any) -> Any:
    for tier, upstreams in tier_pods.items():
        settings.GATEWAY_TIER_PODS[tier] = [await u.start() for u in upstreams]
    gateway = Gateway()
    try:
        return await scenario(gateway)
    finally:
        await gateway.stop()
        for upstreams in tier_pods.values():
            for u in upstreams:
                await u.stop()


def test_a_known_caller_still_meets_revocation_suspension_and_the_named_tenant(
    gateway_settings, make_tenant, actor
) -> None:  # type: ignore[no-untyped-def]
    from tenants.device_services import device_revoke

    owner, other = make_tenant(), make_tenant()
    private, signing, encryption = device_keys()
    device = device_register(
        tenant_id=owner.id, device_name="p", platform="ios", public_key_signing=signing,
        public_key_encryption=encryption, actor=actor,
    )  # fmt: skip
    device_auth = (b"authorization", f"Bearer {device_token(device.id, private, owner.id)}".encode())
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        for _ in range(2):  # the second request is answered from the caller cache
            assert (await call(gateway, "GET", "/v1/models", headers=[device_auth])).status == 200
        assert gateway.auth.callers.get(device_auth[1]) is not None
        named_other = await call(
            gateway, "GET", "/v1/models", headers=[device_auth, (b"x-percolate-tenant", str(other.id).encode())]
        )
        assert named_other.status == 403 and b"another tenant" in named_other.body
        await asyncio.to_thread(device_revoke, device_id=device.id, actor=actor)
        gateway.devices.invalidate(device.id)  # what the pub/sub listener does
        revoked = await call(gateway, "GET", "/v1/models", headers=[device_auth])
        assert revoked.status == 403 and b"revoked" in revoked.body

        platform_auth = bearer(owner.id)
        assert (await call(gateway, "GET", "/v1/models", headers=[platform_auth])).status == 200
        await asyncio.to_thread(tenant_suspend, tenant_id=owner.id, actor=actor)
        gateway.routes.invalidate(owner.id)
        suspended = await call(gateway, "GET", "/v1/models", headers=[platform_auth])
        assert suspended.status == 403 and b"suspended" in suspended.body
        assert len(pod.seen) == 3

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_routes_to_the_tenants_tier_and_sets_gateway_headers(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant_b, tenant_c = make_tenant(tier="B"), make_tenant(tier="C")
    b_pod, c_pod = Upstream(), Upstream()

    async def scenario(gateway: Gateway) -> None:
        spoof = [
            (b"x-percolate-tenant", str(tenant_b.id).encode()),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"connection", b"x-evil"),
            (b"x-evil", b"1"),
            (b"x-request-id", b"req-123"),
        ]
        reply = await call(
            gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant_b.id), *spoof], body=[b'{"messages": []}']
        )
        assert reply.status == 200, reply.body
        assert json.loads(reply.body)["tenant"] == str(tenant_b.id)
        assert b"x-hop" not in reply.headers and reply.headers[b"x-node"] == b"n1"
        assert reply.headers[b"x-request-id"] == b"req-123"
        assert reply.headers[b"x-percolate-route"].startswith(b"B/")
        seen = b_pod.seen[0]
        assert seen.headers["Authorization"] == f"Bearer {gateway_settings.PLATFORM_SERVICE_TOKEN}"
        assert seen.headers["X-Forwarded-For"] == "198.51.100.9"
        assert "X-Evil" not in seen.headers and seen.headers["X-Percolate-Generation"] == "1"
        assert b_pod.bodies[0] == b'{"messages": []}'
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant_c.id)])
        assert reply.status == 200 and len(c_pod.seen) == 1 and len(b_pod.seen) == 1

        def lookups(result: str) -> float:
            labels = {"cache": "route", "result": result}
            return metrics.registry.get_sample_value("percolate_gateway_cache_lookups_total", labels) or 0.0

        hits, misses = lookups("hit"), lookups("miss")
        assert (await call(gateway, "GET", "/v1/models", headers=[bearer(tenant_c.id)])).status == 200
        assert (lookups("hit"), lookups("miss")) == (hits + 1, misses)  # the route came from the cache
        assert b"percolate_gateway_cache_lookups_total" in (await call(gateway, "GET", "/metrics")).body

    run(_with_gateway(gateway_settings, {"B": [b_pod], "C": [c_pod]}, scenario))


def test_outsiders_are_refused_with_json_errors(gateway_settings, make_tenant, actor) -> None:  # type: ignore[no-untyped-def]
    owner, other = make_tenant(), make_tenant()
    private, signing, encryption = device_keys()
    device = device_register(
        tenant_id=owner.id,
        device_name="p",
        platform="ios",
        public_key_signing=signing,
        public_key_encryption=encryption,
        actor=actor,
    )
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        cases = [
            ([], 401),
            ([(b"authorization", b"Bearer not-a-jwt")], 401),
            ([(b"authorization", f"Bearer {device_token(device.id, private, owner.id, exp=1, iat=0)}".encode())], 401),
            ([(b"authorization", f"Bearer {device_token(device.id, private, other.id)}".encode())], 403),
            ([bearer(owner.id), (b"x-percolate-tenant", str(other.id).encode())], 403),
        ]
        for headers, status in cases:
            reply = await call(gateway, "GET", "/v1/models", headers=headers)
            assert reply.status == status, (headers, reply.body)
            assert set(json.loads(reply.body)["error"]) == {"code", "message"}
        ok = await call(
            gateway,
            "GET",
            "/v1/models",
            headers=[(b"authorization", f"Bearer {device_token(device.id, private, owner.id)}".encode())],
        )
        assert ok.status == 200
        await asyncio.to_thread(tenant_suspend, tenant_id=owner.id, actor=actor)
        gateway.routes.invalidate(owner.id)
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(owner.id)])
        assert reply.status == 403 and b"suspended" in reply.body
        assert len(pod.seen) == 1

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_refused_pod_is_ejected_and_its_tenants_go_to_their_next_choice(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()
    live = Upstream()

    async def scenario(gateway: Gateway) -> None:
        # A closed port that is this tenant's first choice, so the test exercises the fallback.
        dead = next(
            f"127.0.0.1:{port}"
            for port in range(1, 100)
            if ranked_pods(str(tenant.id), [f"127.0.0.1:{port}", live.address])[0] != live.address
        )
        gateway.discovery.pods("B").pods = (dead, live.address)
        routes = []
        for _ in range(3):
            reply = await call(gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant.id)], body=[b"{}"])
            assert reply.status == 200
            routes.append(reply.headers[b"x-percolate-route"])
        assert gateway.discovery.pods("B").ejected() == [dead]
        assert len(live.seen) == 3 and routes == [f"B/{live.address}/1".encode()] * 3

    run(_with_gateway(gateway_settings, {"B": [live]}, scenario))


def test_no_pods_is_503_and_dead_pod_is_502(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()

    async def scenario(gateway: Gateway) -> None:
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant.id)])
        assert reply.status == 503 and reply.headers[b"retry-after"] == b"5"
        gateway.discovery.pods("B").pods = ("127.0.0.1:1",)
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant.id)])
        assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_unavailable"

    run(_with_gateway(gateway_settings, {}, scenario))


def test_sse_streams_through_unbuffered_and_a_disconnect_closes_the_upstream(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()
    upstream_closed = asyncio.Event

    async def scenario(gateway: Gateway) -> None:
        closed = upstream_closed()
        first_sent = asyncio.Event()

        async def sse(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            try:
                for i in range(1000):
                    await response.write(f"data: {i}\n\n".encode())
                    first_sent.set()
                    await asyncio.sleep(0.01)
            except (ConnectionResetError, asyncio.CancelledError):
                closed.set()
                raise
            return response

        pod = Upstream(sse)
        gateway.discovery.pods("B").pods = (await pod.start(),)
        reply = await asyncio.wait_for(
            call(gateway, "GET", "/v1/stream", headers=[bearer(tenant.id)], disconnect_after_chunks=3), 10
        )
        assert reply.status == 200 and reply.chunks[0] == b"data: 0\n\n"
        await asyncio.wait_for(closed.wait(), 5)
        await pod.stop()

    run(_with_gateway(gateway_settings, {}, scenario))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"content-length", b"5"), (b"transfer-encoding", b"chunked")], 400),
        ([(b"content-length", b"5"), (b"content-length", b"6")], 400),
        ([(b"transfer-encoding", b"gzip, chunked")], 400),
        ([(b"content-length", b"-1")], 400),
        ([(b"x-h", b"v")] * 200, 431),
        ([(b"x-big", b"v" * 20000)], 431),
        ([(b"content-length", str(10 * 1024 * 1024).encode())], 413),
    ],
)
def test_protection_shapes_are_refused(gateway_settings, make_tenant, headers, status) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()

    async def scenario(gateway: Gateway) -> None:
        reply = await call(gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant.id), *headers])
        assert reply.status == status

    run(_with_gateway(gateway_settings, {}, scenario))


def test_an_http1_request_without_framing_is_forwarded_without_reading_a_body(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        read: list[dict[str, Any]] = []
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant.id)], http_version="1.1", received=read)
        assert reply.status == 200 and read == [] and pod.bodies == [b""]
        # HTTP/2 frames a body without Content-Length: it is read and forwarded
        reply = await call(
            gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant.id)], body=[b"{}"], http_version="2"
        )
        assert reply.status == 200 and pod.bodies[-1] == b"{}"

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_body_over_the_limit_while_streaming_is_413(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = make_tenant()
    gateway_settings.GATEWAY_MAX_BODY_BYTES = 100_000
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        chunks = [b"x" * 30_000] * 5
        reply = await call(gateway, "POST", "/v1/upload", headers=[bearer(tenant.id)], body=chunks)
        assert reply.status == 413

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_rate_limit_isolates_a_noisy_tenant(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    noisy, quiet = make_tenant(tier="C"), make_tenant(tier="C")
    gateway_settings.TIER_POLICY = {
        **gateway_settings.TIER_POLICY,
        "C": replace(gateway_settings.TIER_POLICY["C"], requests_per_minute=12),
    }
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        statuses = [(await call(gateway, "GET", "/v1/models", headers=[bearer(noisy.id)])).status for _ in range(6)]
        assert statuses.count(200) == 2 and statuses.count(429) == 4
        refused = await call(gateway, "GET", "/v1/models", headers=[bearer(noisy.id)])
        assert int(refused.headers[b"retry-after"]) >= 1
        assert (await call(gateway, "GET", "/v1/models", headers=[bearer(quiet.id)])).status == 200

    run(_with_gateway(gateway_settings, {"C": [pod]}, scenario))


def test_own_endpoints(gateway_settings, make_tenant) -> None:  # type: ignore[no-untyped-def]
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/healthz")).status == 200
        assert (await call(gateway, "GET", "/readyz")).status == 200
        metrics = await call(gateway, "GET", "/metrics")
        assert b"percolate_gateway_open_streams" in metrics.body

    run(_with_gateway(gateway_settings, {"A": [pod]}, scenario))


def test_readyz_is_503_without_pods(gateway_settings) -> None:  # type: ignore[no-untyped-def]
    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/readyz")).status == 503

    run(_with_gateway(gateway_settings, {}, scenario))


def test_unknown_tenant_token_is_403(gateway_settings) -> None:  # type: ignore[no-untyped-def]
    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/v1/models", headers=[bearer(uuid.uuid4())])).status == 403

    run(_with_gateway(gateway_settings, {}, scenario))


def test_the_garbage_collector_is_settled_after_start_up() -> None:
    import gc

    from gateway.app import settle_garbage_collector

    before = gc.get_threshold()
    try:
        settle_garbage_collector(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
