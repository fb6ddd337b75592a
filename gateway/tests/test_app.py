"""The gateway end to end in-process: real tenants in PostgreSQL, real Redis, real upstream servers."""

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from aiohttp import web

from core.pod_credentials import proxy_credential
from gateway import metrics
from gateway.app import Gateway
from gateway.pods.hashing import ranked_pods
from gateway.tests.conftest import CHAT_PATH, Upstream, bearer, call, chat, device_keys, device_token
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
) -> None:
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
            assert (await chat(gateway, headers=[device_auth])).status == 200
        assert gateway.auth.callers.get(device_auth[1]) is not None
        named_other = await chat(gateway, headers=[device_auth, (b"x-percolate-tenant", str(other.id).encode())])
        assert named_other.status == 403 and b"another tenant" in named_other.body
        await asyncio.to_thread(device_revoke, device_id=device.id, actor=actor)
        gateway.devices.invalidate(device.id)  # what the pub/sub listener does
        revoked = await chat(gateway, headers=[device_auth])
        assert revoked.status == 403 and b"revoked" in revoked.body

        platform_auth = bearer(owner.id)
        assert (await chat(gateway, headers=[platform_auth])).status == 200
        await asyncio.to_thread(tenant_suspend, tenant_id=owner.id, actor=actor)
        gateway.routes.invalidate(owner.id)
        suspended = await chat(gateway, headers=[platform_auth])
        assert suspended.status == 403 and b"suspended" in suspended.body
        assert len(pod.seen) == 3

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_routes_to_the_tenants_tier_and_sets_gateway_headers(gateway_settings, make_tenant) -> None:
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
        assert b"x-hop" not in reply.headers and b"x-node" not in reply.headers  # not on the response allow-list
        assert reply.headers[b"x-request-id"] == b"req-123"
        assert reply.headers[b"x-percolate-route"].startswith(b"B/")
        seen = b_pod.seen[0]
        # The pod's public listener sees the proxy credential, never the service credential of its internal API.
        assert seen.headers["Authorization"] == f"Bearer {proxy_credential(gateway_settings.PLATFORM_SERVICE_TOKEN)}"
        assert seen.headers["X-Forwarded-For"] == "198.51.100.9"
        assert "X-Evil" not in seen.headers and seen.headers["X-Percolate-Generation"] == "1"
        assert b_pod.bodies[0] == b'{"messages": []}'
        reply = await chat(gateway, headers=[bearer(tenant_c.id)])
        assert reply.status == 200 and len(c_pod.seen) == 1 and len(b_pod.seen) == 1

        def lookups(result: str) -> float:
            labels = {"cache": "route", "result": result}
            return metrics.registry.get_sample_value("percolate_gateway_cache_lookups_total", labels) or 0.0

        hits, misses = lookups("hit"), lookups("miss")
        assert (await chat(gateway, headers=[bearer(tenant_c.id)])).status == 200
        assert (lookups("hit"), lookups("miss")) == (hits + 1, misses)  # the route came from the cache
        assert b"percolate_gateway_cache_lookups_total" in (await call(gateway, "GET", "/metrics")).body

    run(_with_gateway(gateway_settings, {"B": [b_pod], "C": [c_pod]}, scenario))


def test_outsiders_are_refused_with_json_errors(gateway_settings, make_tenant, actor) -> None:
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
            reply = await chat(gateway, headers=headers)
            assert reply.status == status, (headers, reply.body)
            assert set(json.loads(reply.body)["error"]) == {"code", "message"}
        ok = await chat(
            gateway,
            headers=[(b"authorization", f"Bearer {device_token(device.id, private, owner.id)}".encode())],
        )
        assert ok.status == 200
        await asyncio.to_thread(tenant_suspend, tenant_id=owner.id, actor=actor)
        gateway.routes.invalidate(owner.id)
        reply = await chat(gateway, headers=[bearer(owner.id)])
        assert reply.status == 403 and b"suspended" in reply.body
        assert len(pod.seen) == 1

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_refused_pod_is_ejected_and_its_tenants_go_to_their_next_choice(gateway_settings, make_tenant) -> None:
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


def test_no_pods_is_503_and_dead_pod_is_502(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()

    async def scenario(gateway: Gateway) -> None:
        reply = await chat(gateway, headers=[bearer(tenant.id)])
        assert reply.status == 503 and reply.headers[b"retry-after"] == b"5"
        gateway.discovery.pods("B").pods = ("127.0.0.1:1",)
        reply = await chat(gateway, headers=[bearer(tenant.id)])
        assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_unavailable"

    run(_with_gateway(gateway_settings, {}, scenario))


def test_sse_streams_through_unbuffered_and_a_disconnect_closes_the_upstream(gateway_settings, make_tenant) -> None:
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
        reply = await asyncio.wait_for(chat(gateway, headers=[bearer(tenant.id)], disconnect_after_chunks=3), 10)
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
def test_protection_shapes_are_refused(gateway_settings, make_tenant, headers, status) -> None:
    tenant = make_tenant()

    async def scenario(gateway: Gateway) -> None:
        reply = await call(gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant.id), *headers])
        assert reply.status == status

    run(_with_gateway(gateway_settings, {}, scenario))


def test_an_http1_request_without_framing_is_forwarded_without_reading_a_body(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        read: list[dict[str, Any]] = []
        reply = await call(gateway, "POST", CHAT_PATH, headers=[bearer(tenant.id)], http_version="1.1", received=read)
        assert reply.status == 200 and read == [] and pod.bodies == [b""]
        # HTTP/2 frames a body without Content-Length: it is read and forwarded
        reply = await call(
            gateway, "POST", "/v1/chat/completions", headers=[bearer(tenant.id)], body=[b"{}"], http_version="2"
        )
        assert reply.status == 200 and pod.bodies[-1] == b"{}"

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_body_over_the_limit_while_streaming_is_413(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    gateway_settings.GATEWAY_MAX_BODY_BYTES = 100_000
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        chunks = [b"x" * 30_000] * 5
        reply = await call(gateway, "POST", CHAT_PATH, headers=[bearer(tenant.id)], body=chunks)
        assert reply.status == 413

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_rate_limit_isolates_a_noisy_tenant(gateway_settings, make_tenant) -> None:
    from dataclasses import replace

    noisy, quiet = make_tenant(tier="C"), make_tenant(tier="C")
    gateway_settings.TIER_POLICY = {
        **gateway_settings.TIER_POLICY,
        "C": replace(gateway_settings.TIER_POLICY["C"], requests_per_minute=12),
    }
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        statuses = [(await chat(gateway, headers=[bearer(noisy.id)])).status for _ in range(6)]
        assert statuses.count(200) == 2 and statuses.count(429) == 4
        refused = await chat(gateway, headers=[bearer(noisy.id)])
        assert int(refused.headers[b"retry-after"]) >= 1
        assert (await chat(gateway, headers=[bearer(quiet.id)])).status == 200

    run(_with_gateway(gateway_settings, {"C": [pod]}, scenario))


def test_own_endpoints(gateway_settings, make_tenant) -> None:
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/healthz")).status == 200
        assert (await call(gateway, "GET", "/readyz")).status == 200
        metrics = await call(gateway, "GET", "/metrics")
        assert b"percolate_gateway_open_streams" in metrics.body

    run(_with_gateway(gateway_settings, {"A": [pod]}, scenario))


def test_readyz_is_503_without_pods(gateway_settings) -> None:
    async def scenario(gateway: Gateway) -> None:
        assert (await call(gateway, "GET", "/readyz")).status == 503

    run(_with_gateway(gateway_settings, {}, scenario))


def test_unknown_tenant_token_is_403(gateway_settings) -> None:
    async def scenario(gateway: Gateway) -> None:
        assert (await chat(gateway, headers=[bearer(uuid.uuid4())])).status == 403

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


INTERNAL_SPELLINGS = [
    "/internal/tenants",
    "/internal/warm/{other}",
    "/internal/evict/{other}",
    "/internal/deliver/{other}",
    "/%69nternal/tenants",
    "/%2569nternal/tenants",
    "/internal%2Ftenants",
    "/internal/%74enants",
    "//internal/tenants",
    "/./internal/tenants",
    "/v1/../internal/tenants",
    "/v1/%2E%2E/internal/tenants",
    "/v1/chat/completions/../../../internal/tenants",
    "/INTERNAL/tenants",
    "/internal/tenants/",
    "/internal/tenants;x",
    "/v1/chat/completions/",
    "/v1/chat/completions%2F",
    "/v1/chat//completions",
    "/v1/chat/%63ompletions",
    "/V1/chat/completions",
    "/v1/chat/completions/../../internal/evict/{other}",
    "/v1/models/../../internal/tenants",
    "/metrics/../internal/tenants",
    "/",
    "/v1/embeddings",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_no_spelling_of_a_path_off_the_allow_list_reaches_a_pod(gateway_settings, make_tenant, method) -> None:
    """An attacker with a valid account tries every internal route of its pod, and every encoding of them."""
    tenant, other = make_tenant(), make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        for spelling in INTERNAL_SPELLINGS:
            raw = spelling.format(other=other.id)
            reply = await call(gateway, method, raw, headers=[bearer(tenant.id)], body=[b'{"generation": 1}'])
            assert reply.status == 404, (raw, reply.status)
            assert json.loads(reply.body)["error"]["code"] == "not_found"
        assert pod.seen == []

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_listed_path_with_another_method_is_405_and_unforwarded(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        reply = await call(gateway, "GET", CHAT_PATH, headers=[bearer(tenant.id)])
        assert reply.status == 405 and reply.headers[b"allow"] == b"POST"
        assert json.loads(reply.body)["error"]["code"] == "method_not_allowed"
        reply = await call(gateway, "DELETE", "/v1/models", headers=[bearer(tenant.id)])
        assert reply.status == 405
        assert pod.seen == []

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_the_query_string_is_forwarded_as_given_and_a_forged_one_refused(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        reply = await chat(gateway, headers=[bearer(tenant.id)], query_string=b"api-version=2024-10-21&x=%2F")
        assert reply.status == 200
        assert pod.seen[-1].raw_path == "/v1/chat/completions?api-version=2024-10-21&x=%2F"
        for forged in (b"a b", b"a\r\nx-evil: 1", b"a#frag", b"a\x00b", "é".encode()):
            reply = await chat(gateway, headers=[bearer(tenant.id)], query_string=forged)
            assert reply.status == 400, forged
        assert len(pod.seen) == 1

    run(_with_gateway(gateway_settings, {"B": [pod]}, scenario))


def test_a_pod_that_refuses_the_gateways_credential_is_a_502_not_the_clients_401(gateway_settings, make_tenant) -> None:
    tenant = make_tenant()

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "unauthorized", "message": "no"}}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )

    async def scenario(gateway: Gateway) -> None:
        reply = await chat(gateway, headers=[bearer(tenant.id)])
        assert reply.status == 502 and json.loads(reply.body)["error"]["code"] == "upstream_refused"
        assert b"www-authenticate" not in reply.headers

    run(_with_gateway(gateway_settings, {"B": [Upstream(refuse)]}, scenario))


def test_models_lists_the_callers_tier_models_without_reaching_a_pod(gateway_settings, make_tenant) -> None:
    from dataclasses import replace

    tenant_a, tenant_c = make_tenant(tier="A"), make_tenant(tier="C")
    policy = gateway_settings.TIER_POLICY
    gateway_settings.TIER_POLICY = {**policy, "A": replace(policy["A"], models=("percolate-large", "percolate-small"))}
    pod = Upstream()

    async def scenario(gateway: Gateway) -> None:
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant_a.id)])
        assert reply.status == 200 and reply.headers[b"content-type"] == b"application/json"
        doc = json.loads(reply.body)
        assert doc["object"] == "list"
        assert [(m["id"], m["object"], m["owned_by"]) for m in doc["data"]] == [
            ("percolate-large", "model", "percolate"),
            ("percolate-small", "model", "percolate"),
        ]
        reply = await call(gateway, "GET", "/v1/models", headers=[bearer(tenant_c.id)])
        assert [m["id"] for m in json.loads(reply.body)["data"]] == ["percolate-reference"]
        assert (await call(gateway, "GET", "/v1/models")).status == 401
        assert pod.seen == []

    run(_with_gateway(gateway_settings, {"A": [pod], "C": [pod]}, scenario))


def test_a_client_that_leaves_before_the_pod_answers_frees_the_pod_at_once(gateway_settings, make_tenant) -> None:
    """Not after the 30 s response-header timeout: the pod's connection is closed within a fraction of a second."""
    tenant = make_tenant()

    async def scenario(gateway: Gateway) -> None:
        pod_saw_close = asyncio.Event()

        async def stall(request: web.Request) -> web.Response:
            for _ in range(1500):  # never answers; watches its connection instead
                if request.transport is None or request.transport.is_closing():
                    pod_saw_close.set()
                    break
                await asyncio.sleep(0.02)
            return web.Response()

        pod = Upstream(stall)
        gateway.discovery.pods("B").pods = (await pod.start(),)
        gone = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, gone.set)
        started = time.monotonic()
        reply = await asyncio.wait_for(chat(gateway, headers=[bearer(tenant.id)], client_gone=gone), 10)
        assert reply.status == 0  # nobody to answer
        await asyncio.wait_for(pod_saw_close.wait(), 3)
        assert time.monotonic() - started < 3
        await pod.stop()

    run(_with_gateway(gateway_settings, {}, scenario))
