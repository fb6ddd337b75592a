"""Contract tests: every endpoint's status codes and JSON shapes, auth, SSE framing, generation fencing."""

from __future__ import annotations

import json
import uuid

import pytest

from tiernode.tests.conftest import AUTH, PROXY_AUTH, AsgiClient, running

INTERNAL_ROUTES = [
    ("POST", "/internal/warm/{tid}"),
    ("POST", "/internal/evict/{tid}"),
    ("POST", "/internal/deliver/{tid}"),
    ("GET", "/internal/tenants"),
]


def _error(resp, status: int, code: str) -> None:
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers["content-type"] == "application/json"
    doc = resp.json()
    assert set(doc) == {"error"} and doc["error"]["code"] == code and isinstance(doc["error"]["message"], str)


async def test_health_ready_metrics_are_public(make_node) -> None:
    app = make_node()
    client = AsgiClient(app)
    assert (await client.request("GET", "/health", auth=False)).json() == {"status": "ok"}
    not_yet = await client.request("GET", "/ready", auth=False)
    assert not_yet.status == 503 and not_yet.json()["status"] == "starting"
    async with running(app) as client:
        ready = await client.request("GET", "/ready", auth=False)
        assert ready.status == 200
        assert ready.json() == {"status": "ready", "tier": "B", "pod_id": "tier-b-test-0", "hot": 0, "max_hot": 15}
        metrics = await client.request("GET", "/metrics", auth=False)
        assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
        text = metrics.body.decode()
        for name in (
            "percolate_hot_tenants_count 0.0",
            "percolate_warm_tenants_count 0.0",
            "percolate_tenant_load_seconds",
            "percolate_tenant_evictions_total",
            "percolate_tenant_state_transitions_total",
            "percolate_max_hot_tenants 15.0",
        ):
            assert name in text
        _error(await client.request("POST", "/health", auth=False), 405, "method_not_allowed")
    draining = await client.request("GET", "/ready", auth=False)
    assert draining.status == 503 and draining.json()["status"] == "draining"


async def test_protected_routes_need_their_listeners_credential(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        routes = [(method, path.format(tid=tid)) for method, path in INTERNAL_ROUTES]
        routes.append(("POST", "/v1/chat/completions"))
        for method, path in routes:
            for headers in (
                {},
                {"authorization": "Bearer wrong-token-wrong-token"},
                {"authorization": "Service test-service-token-0123456789"},
            ):
                resp = await client.request(method, path, json_body={"generation": 1}, headers=headers, auth=False)
                _error(resp, 401, "unauthorized")
                assert resp.headers["www-authenticate"] == "Bearer"
        _error(await client.request("GET", "/nope"), 404, "not_found")


async def test_credentials_are_not_interchangeable_between_listeners(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        for method, path in INTERNAL_ROUTES:
            resp = await client.request(method, path.format(tid=tid), json_body={"generation": 1}, headers=PROXY_AUTH)
            _error(resp, 401, "unauthorized")  # the gateway's proxy credential opens no internal route
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        resp = await client.request("POST", "/v1/chat/completions", json_body=chat, headers=AUTH, auth=False)
        _error(resp, 401, "unauthorized")


@pytest.mark.parametrize(
    "raw",
    [
        "/internal/tenants",
        "/%69nternal/tenants",
        "/internal%2Ftenants",
        "//internal/tenants",
        "/v1/../internal/tenants",
        "/internal/tenants/",
        "/INTERNAL/tenants",
        "/internal/warm/{tid}",
        "/internal/evict/{tid}",
        "/internal/deliver/{tid}",
    ],
)
async def test_the_public_listener_has_no_internal_route_in_any_spelling(make_node, raw: str) -> None:
    """Whatever reaches the public listener (the one the gateway forwards to), with either credential."""
    async with running(make_node()) as client:
        raw = raw.format(tid=uuid.uuid4())
        for credential in (PROXY_AUTH, AUTH):
            resp = await client.request("POST", raw, json_body={"generation": 1}, headers=credential, listener="public")
            _error(resp, 404, "not_found")
            resp = await client.request("GET", raw, headers=credential, listener="public")
            _error(resp, 404, "not_found")
        assert client.app.manager.hot_count == 0


@pytest.mark.parametrize("raw", ["/v1/chat/completions", "/v1/chat/completions/", "/v1//chat/completions"])
async def test_the_internal_listener_does_not_chat(make_node, raw: str) -> None:
    async with running(make_node()) as client:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        headers = {**AUTH, "x-percolate-tenant": str(uuid.uuid4())}
        resp = await client.request("POST", raw, json_body=body, headers=headers, listener="internal")
        _error(resp, 404, "not_found")


async def test_warm_evict_and_list(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        resp = await client.warm(tid, 3)
        assert resp.status == 200
        doc = resp.json()
        assert doc["tenant_id"] == str(tid) and doc["state"] == "hot" and doc["generation"] == 3
        assert doc["source"] == "cold" and doc["load_seconds"] > 0
        again = (await client.warm(tid, 3)).json()
        assert again["source"] == "hot" and again["load_seconds"] == 0
        listing = (await client.request("GET", "/internal/tenants")).json()
        assert listing["hot_count"] == 1 and listing["warm_count"] == 0 and listing["tier"] == "B"
        assert [(t["tenant_id"], t["state"], t["generation"]) for t in listing["tenants"]] == [(str(tid), "hot", 3)]
        evicted = await client.evict(tid, 3)
        assert evicted.status == 200
        assert evicted.json() == {
            "tenant_id": str(tid),
            "state": "cold",
            "previous_state": "hot",
            "generation": 3,
            "context_blob": "skipped: no key source",
        }
        assert (await client.request("GET", "/internal/tenants")).json()["tenants"] == []
        # Evicting a tenant the pod does not hold is fine (idempotent).
        assert (await client.evict(tid, 3)).json()["previous_state"] == "cold"


async def test_request_validation(make_node) -> None:
    async with running(make_node(PERCOLATE_MAX_BODY_BYTES="2048")) as client:
        tid = uuid.uuid4()
        _error(
            await client.request("POST", "/internal/warm/not-a-uuid", json_body={"generation": 1}),
            400,
            "invalid_tenant",
        )
        _error(await client.request("POST", f"/internal/warm/{tid}", body=b"{nope"), 400, "invalid_json")
        _error(await client.request("POST", f"/internal/warm/{tid}"), 400, "invalid_generation")
        for bad in (0, -1, "1", True, None, 1.5):
            _error(
                await client.request("POST", f"/internal/warm/{tid}", json_body={"generation": bad}),
                400,
                "invalid_generation",
            )
        _error(await client.request("GET", f"/internal/warm/{tid}"), 405, "method_not_allowed")
        big = json.dumps({"generation": 1, "pad": "x" * 5000}).encode()
        _error(await client.request("POST", f"/internal/warm/{tid}", body=big), 413, "payload_too_large")
        # No content-length: the limit holds while streaming the body in.
        _error(
            await client.request("POST", f"/internal/warm/{tid}", body=big, chunk_size=512), 413, "payload_too_large"
        )
        chat_headers = {"x-percolate-tenant": str(tid), "x-percolate-generation": "1"}
        _error(await client.request("POST", "/v1/chat/completions", json_body={"messages": []}), 400, "missing_tenant")
        _error(
            await client.request(
                "POST", "/v1/chat/completions", json_body={"messages": []}, headers={"x-percolate-tenant": "abc"}
            ),
            400,
            "invalid_tenant",
        )
        _error(
            await client.request(
                "POST",
                "/v1/chat/completions",
                json_body={"messages": []},
                headers={"x-percolate-tenant": str(tid), "x-percolate-generation": "x"},
            ),
            400,
            "invalid_generation",
        )
        body: object
        for body in (
            {"messages": []},
            {"messages": [{"role": "nobody", "content": "x"}]},
            {"messages": [{"role": "system", "content": "x"}]},
            [1],
            {"messages": [{"role": "user", "content": "x"}], "stream": "yes"},
        ):
            _error(
                await client.request("POST", "/v1/chat/completions", json_body=body, headers=chat_headers),
                400,
                "invalid_request",
            )
        _error(
            await client.request("POST", "/v1/chat/completions", body=b"[", headers=chat_headers), 400, "invalid_json"
        )
        _error(await client.request("GET", "/v1/chat/completions", headers=chat_headers), 405, "method_not_allowed")


async def test_chat_completion_shapes(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        _error(await client.chat(tid, "hello"), 409, "unknown_generation")  # never given a generation
        first = await client.chat(tid, "My name is Ada. I like green tea.", generation=1)
        assert first.status == 200 and first.headers["content-type"] == "application/json"
        doc = first.json()
        assert doc["object"] == "chat.completion" and doc["model"] == "m" and doc["id"].startswith("chatcmpl-")
        assert isinstance(doc["created"], int)
        [choice] = doc["choices"]
        assert choice["index"] == 0 and choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        reply = choice["message"]["content"]
        assert "name: Ada" in reply and "you like green tea" in reply
        assert set(doc["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
        # Known now: no generation header needed; the reply draws on stored memory.
        second = (await client.chat(tid, "What do you know?")).json()["choices"][0]["message"]["content"]
        assert "I have 3 messages" in second and "My name is Ada" in second


async def test_chat_streams_sse_chunks(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 1)
        resp = await client.chat(tid, "Remember that the launch is on Friday.", stream=True)
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        events = resp.events()
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert len(chunks) > 5
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
        streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert "the launch is on Friday" in streamed
        # The streamed reply is exactly what was stored: the next reply counts it.
        plain = (await client.chat(tid, "again")).json()["choices"][0]["message"]["content"]
        assert plain.startswith("I have 3 messages")


async def test_stale_generation_is_refused(make_node) -> None:
    async with running(make_node()) as client:
        tid = uuid.uuid4()
        assert (await client.warm(tid, 5)).status == 200
        _error(await client.warm(tid, 4), 409, "stale_generation")
        _error(await client.chat(tid, "hi", generation=4), 409, "stale_generation")
        _error(await client.evict(tid, 4), 409, "stale_generation")
        assert (await client.chat(tid, "hi", generation=5)).status == 200
        # A newer generation from the platform is adopted; the old one is then stale.
        assert (await client.warm(tid, 6)).json()["generation"] == 6
        _error(await client.chat(tid, "hi", generation=5), 409, "stale_generation")
        assert (await client.evict(tid, 6)).status == 200


async def test_hot_count_in_metrics_matches_manager(make_node) -> None:
    app = make_node(PERCOLATE_MAX_HOT_TENANTS="3")
    async with running(app) as client:

        async def scraped(name: str) -> float:
            text = (await client.request("GET", "/metrics", auth=False)).body.decode()
            [line] = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
            return float(line.split()[1])

        tids = [uuid.uuid4() for _ in range(5)]
        for i, tid in enumerate(tids):
            await client.warm(tid, 1)
            await app.manager.settle()
            assert await scraped("percolate_hot_tenants_count") == app.manager.hot_count == min(i + 1, 3)
            assert await scraped("percolate_warm_tenants_count") == app.manager.warm_count == max(0, i - 2)
        await client.evict(tids[-1], 1)
        assert await scraped("percolate_hot_tenants_count") == app.manager.hot_count == 2
        text = (await client.request("GET", "/metrics", auth=False)).body.decode()
        assert 'percolate_tenant_evictions_total{reason="lru"} 2.0' in text
        assert 'percolate_tenant_evictions_total{reason="requested"} 1.0' in text
        assert 'percolate_tenant_load_seconds_count{source="cold"} 5.0' in text
        assert 'percolate_tenant_state_transitions_total{from="hot",to="warm"} 2.0' in text


async def test_per_tenant_series_cover_the_hot_tenants_only(make_node) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    app = make_node(PERCOLATE_MAX_HOT_TENANTS="2")
    async with running(app) as client:
        first, second, third = (uuid.uuid4() for _ in range(3))
        await client.warm(first, 1)
        for _ in range(3):
            assert (await client.chat(first, "hello", generation=1)).status == 200
        await client.warm(second, 1)
        await client.warm(third, 1)  # the hot set holds two: `first` (least recently used) goes warm
        await app.manager.settle()
        assert (await client.chat(third, "hi", generation=1)).status == 200

        text = (await client.request("GET", "/metrics", auth=False)).body.decode()
        samples = {
            (s.name, s.labels.get("tenant_id")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if "tenant_id" in s.labels
        }
        assert {tenant for _, tenant in samples} == {str(second), str(third)}
        assert samples[("percolate_tenant_requests_total", str(third))] == 1
        assert samples[("percolate_tenant_requests_total", str(second))] == 0
        assert samples[("percolate_tenant_messages", str(third))] == 2  # the question and the answer
        assert samples[("percolate_tenant_memory_bytes", str(third))] > 0
        assert samples[("percolate_tenant_last_load_seconds", str(third))] > 0
