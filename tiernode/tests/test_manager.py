"""The tenant manager: LRU bound and order, idle timers on a controlled clock, single-flight loads, blobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from tiernode.blob import context_key, open_context
from tiernode.store import TenantStore
from tiernode.tests.conftest import AsgiClient, eventually, running, sample


async def test_lru_evicts_least_recently_used_and_keeps_the_bound(make_node) -> None:
    app = make_node(PERCOLATE_MAX_HOT_TENANTS="3")
    m = app.manager
    async with running(app) as client:
        a, b, c, d, e = (uuid.uuid4() for _ in range(5))
        for tid in (a, b, c):
            await client.warm(tid, 1)
        assert m.hot_order() == [a, b, c]
        await client.chat(a, "touch a")  # a becomes most recently used
        assert m.hot_order() == [b, c, a]
        await client.warm(d, 1)
        await m.settle()
        assert m.hot_order() == [c, a, d] and m.tenants[b].state == "warm"
        await client.chat(b, "back")  # warm -> hot (no generation needed): evicts c
        await m.settle()
        assert m.hot_order() == [a, d, b] and m.tenants[c].state == "warm"
        await client.warm(e, 1)
        await m.settle()
        assert m.hot_order() == [d, b, e] and m.hot_count == 3 and m.warm_count == 2
        load_sources = sample(app, "percolate_tenant_load_seconds_sum", source="warm")
        assert load_sources > 0


async def test_hot_set_never_exceeds_its_bound_under_concurrent_loads(make_node) -> None:
    peak = 0

    def slow_open(root: Path, tid: uuid.UUID) -> TenantStore:
        nonlocal peak
        peak = max(peak, m.slots_in_use)  # hot tenants plus the loads holding a slot, this one included
        time.sleep(0.01)
        return TenantStore(root, tid)

    app = make_node(PERCOLATE_MAX_HOT_TENANTS="2", open_store=slow_open)
    m = app.manager
    async with running(app) as client:
        tids = [uuid.uuid4() for _ in range(8)]
        results = await asyncio.gather(*(client.chat(t, f"hi {i}", generation=1) for i, t in enumerate(tids)))
        assert {r.status for r in results} == {200}
        await m.settle()
        assert m.hot_count == 2 and peak <= 2
        # Every tenant's message reached its own store.
        for tid in tids:
            assert (
                (await client.chat(tid, "again"))
                .json()["choices"][0]["message"]["content"]
                .startswith("I have 3 messages")
            )


async def test_idle_timers_follow_the_tier_policy(make_node, clock) -> None:
    app = make_node()  # tier B: hot -> warm after 5 min, warm -> cold after 60 min
    m = app.manager
    async with running(app) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 2)
        clock.advance(299)
        await m.sweep()
        assert m.tenants[tid].state == "hot"
        await client.chat(tid, "still here")  # use resets the idle timer
        clock.advance(299)
        await m.sweep()
        assert m.tenants[tid].state == "hot"
        clock.advance(1)
        await m.sweep()
        assert m.tenants[tid].state == "warm" and m.hot_count == 0 and m.warm_count == 1
        clock.advance(3599)
        await m.sweep()
        assert m.tenants[tid].state == "warm"
        clock.advance(1)
        await m.sweep()
        assert tid not in m.tenants and m.warm_count == 0
        text = app.metrics.render().decode()
        assert 'percolate_tenant_evictions_total{reason="idle"} 1.0' in text
        assert 'percolate_tenant_state_transitions_total{from="warm",to="cold"} 1.0' in text
        # Cold now: a chat needs the generation again.
        assert (await client.chat(tid, "hello")).status == 409
        assert (await client.chat(tid, "hello", generation=2)).status == 200


async def test_tier_a_is_kept_warm_and_tier_c_is_quick(make_node, clock) -> None:
    a_node = make_node(PERCOLATE_TENANT_TIER="A")
    assert a_node.cfg.max_hot_tenants == 8 and a_node.cfg.hot_to_warm_seconds is None
    async with running(a_node) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 1)
        clock.advance(365 * 86400)
        await a_node.manager.sweep()
        assert a_node.manager.tenants[tid].state == "hot"
    c_node = make_node(
        PERCOLATE_TENANT_TIER="C", PERCOLATE_HOT_TO_WARM_SECONDS="30", PERCOLATE_WARM_TO_COLD_SECONDS="never"
    )
    assert c_node.cfg.max_hot_tenants == 25
    async with running(c_node) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 1)
        clock.advance(30)
        await c_node.manager.sweep()
        assert c_node.manager.tenants[tid].state == "warm"
        clock.advance(10**7)
        await c_node.manager.sweep()
        assert c_node.manager.tenants[tid].state == "warm"


async def test_single_flight_load_under_100_concurrent_first_requests(make_node) -> None:
    opened: list[uuid.UUID] = []

    def counting_open(root: Path, tid: uuid.UUID) -> TenantStore:
        opened.append(tid)
        time.sleep(0.05)  # a slow open, so the 100 requests really overlap it
        return TenantStore(root, tid)

    app = make_node(open_store=counting_open)
    m = app.manager
    async with running(app) as client:
        tid = uuid.uuid4()
        results = await asyncio.gather(*(client.chat(tid, f"message {i}", generation=1) for i in range(100)))
        assert [r.status for r in results] == [200] * 100
        assert opened == [tid] and m.opens == 1
        assert sample(app, "percolate_tenant_load_seconds_sum", source="cold") > 0
        assert m.tenants[tid].store.message_count == 200
        warmed = await asyncio.gather(*(client.warm(uuid.UUID(int=tid.int), 1) for _ in range(10)))
        assert {r.json()["source"] for r in warmed} == {"hot"} and m.opens == 1


async def test_eviction_writes_a_sealed_blob_with_the_last_messages(make_node, platform, tmp_path) -> None:
    app = make_node(PLATFORM_URL=platform.url, PERCOLATE_BLOB_RECENT_MESSAGES="10")
    async with running(app) as client:
        tid = uuid.uuid4()
        await client.chat(tid, "My name is Ada. I prefer short answers.", generation=7)
        for i in range(20):
            await client.chat(tid, f"note {i}")
        resp = await client.evict(tid, 7)
        assert resp.json()["context_blob"] == "written"
    raw = (tmp_path / "objects" / context_key(tid)).read_bytes()
    assert b"note 19" not in raw and b"Ada" not in raw  # sealed, not plaintext
    key_id, key = platform.key_for(tid)
    doc = open_context(raw, tenant_id=tid, key_for=lambda kid: key if kid == key_id else b"")
    assert doc["tenant_id"] == str(tid) and doc["generation"] == 7 and doc["pod_id"] == "tier-b-test-0"
    assert doc["message_count"] == 42
    assert [m["seq"] for m in doc["messages"]] == list(range(33, 43))
    assert doc["messages"][-2] == {**doc["messages"][-2], "role": "user", "content": "note 19"}
    assert doc["messages"][-1]["role"] == "assistant"
    assert doc["facts"] == {"name": "Ada"} and doc["preferences"] == {"short answers": "prefer"}
    from core.sealed import SealedError

    with pytest.raises(SealedError):
        open_context(raw, tenant_id=uuid.uuid4(), key_for=lambda kid: key)


async def test_lru_and_idle_evictions_write_blobs_too_and_keys_are_dropped(
    make_node, platform, tmp_path, clock
) -> None:
    app = make_node(PLATFORM_URL=platform.url, PERCOLATE_MAX_HOT_TENANTS="1")
    m = app.manager
    async with running(app) as client:
        a, b = uuid.uuid4(), uuid.uuid4()
        await client.chat(a, "alpha", generation=1)
        await m.settle()
        assert m.tenants[a].key is not None  # prefetched while hot
        await client.chat(b, "bravo", generation=1)
        await m.settle()
        assert m.tenants[a].state == "warm" and m.tenants[a].key is None
        assert (tmp_path / "objects" / context_key(a)).exists()
        clock.advance(300)
        await m.sweep()
        assert (tmp_path / "objects" / context_key(b)).exists()


async def test_mobile_only_tenants_get_no_blob(make_node, platform, tmp_path) -> None:
    app = make_node(PLATFORM_URL=platform.url)
    async with running(app) as client:
        tid = uuid.uuid4()
        platform.mobile_only.add(str(tid))
        await client.chat(tid, "private", generation=1)
        assert (await client.evict(tid, 1)).json()["context_blob"] == "skipped: conflict"
    assert not (tmp_path / "objects" / context_key(tid)).exists()


async def test_evict_after_a_crash_still_writes_a_fresh_blob(make_node, platform, tmp_path) -> None:
    tid = uuid.uuid4()
    store = TenantStore(tmp_path / "tenant-data", tid)  # data left by a pod that died before evicting
    store.append_message("user", "left behind")
    store.close()
    app = make_node(PLATFORM_URL=platform.url)
    async with running(app) as client:
        resp = (await client.evict(tid, 4)).json()
        assert resp["previous_state"] == "cold" and resp["context_blob"] == "written"
        assert (await client.evict(uuid.uuid4(), 1)).json()["context_blob"] == "skipped: no data"
    key = platform.key_for(tid)[1]
    doc = open_context((tmp_path / "objects" / context_key(tid)).read_bytes(), tenant_id=tid, key_for=lambda k: key)
    assert doc["messages"][-1]["content"] == "left behind"


async def test_eviction_waits_for_in_flight_requests(make_node) -> None:
    app = make_node()
    m = app.manager
    async with running(app) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 1)
        release = asyncio.Event()

        async def slow_request() -> None:
            async with m.lease(tid, None) as t:
                await release.wait()
                t.store.append_message("user", "written while an evict waits")

        holder = asyncio.create_task(slow_request())
        await asyncio.sleep(0)
        evicting = asyncio.create_task(client.evict(tid, 1))
        await asyncio.sleep(0.05)
        assert not evicting.done() and m.hot_count == 0  # out of the hot set, store still open
        release.set()
        await holder
        assert (await evicting).status == 200
    reopened = TenantStore(tmp_path_of(app), tid)
    assert reopened.recent_messages(1)[0]["content"] == "written while an evict waits"
    reopened.close()


def tmp_path_of(app) -> Path:
    return app.cfg.data_root


async def test_shutdown_flushes_and_releases_every_tenant(make_node, platform) -> None:
    app = make_node(PLATFORM_URL=platform.url)
    tids = [uuid.uuid4() for _ in range(3)]
    async with running(app) as client:
        for tid in tids:
            await client.chat(tid, "hi", generation=2)
    assert app.manager.tenants == {} and not app.ready
    for tid in tids:
        assert platform.reports_for(tid)[-1] == ("cold", 2)
    assert 'percolate_tenant_evictions_total{reason="shutdown"} 3.0' in app.metrics.render().decode()
    late = await AsgiClient(app).chat(tids[0], "late")
    assert late.status == 503 and late.json()["error"]["code"] == "draining" and late.headers["retry-after"] == "1"


async def test_shutdown_past_its_deadline_abandons_blobs_but_reports_every_tenant(make_node, platform) -> None:
    """A slow platform (each key answer 1.5 s) cannot hold a pod past its drain deadline: the blobs still waiting
    are abandoned, every store is flushed and closed, and every tenant is reported cold."""
    platform.key_delay = 1.5
    app = make_node(PLATFORM_URL=platform.url, PERCOLATE_DRAIN_SECONDS="0.3", PERCOLATE_PLATFORM_TIMEOUT_SECONDS="5")
    tids = [uuid.uuid4() for _ in range(6)]
    await app.startup()
    client = AsgiClient(app)
    for tid in tids:
        assert (await client.chat(tid, "remember this", generation=2)).status == 200
    await eventually(lambda: all(t.key is not None for t in app.manager.tenants.values()), timeout=10)
    for t in app.manager.tenants.values():
        t.key = None  # each blob has to ask for its key again, slowly
    started = time.monotonic()
    await app.shutdown()
    elapsed = time.monotonic() - started
    assert elapsed < 1.2, elapsed  # not 2 rounds of 1.5 s key answers on the client's 4 key threads
    assert app.manager.tenants == {}
    for tid in tids:
        assert platform.reports_for(tid)[-1] == ("cold", 2)
        reopened = TenantStore(app.cfg.data_root, tid)
        assert "remember this" in [m["content"] for m in reopened.recent_messages(2)]
        reopened.close()
    assert sample(app, "percolate_context_blob_writes_total", result="drain_deadline") == 6


async def test_a_store_that_will_not_open_is_a_503_and_nothing_is_held(make_node) -> None:
    app = make_node()
    tid = uuid.uuid4()
    other = TenantStore(app.cfg.data_root, tid)  # another process/pod still holds the RocksDB lock
    try:
        async with running(app) as client:
            resp = await client.warm(tid, 1)
            assert resp.status == 503 and resp.json()["error"]["code"] == "load_failed"
            assert resp.headers["retry-after"] == "1"
            assert app.manager.tenants == {} and app.manager.hot_count == 0
            other.close()
            assert (await client.warm(tid, 1)).status == 200
    finally:
        other.close()
