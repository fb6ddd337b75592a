"""The cold path's pure pieces: the byte-bounded blob cache, invalidation, and the warming queue."""

import asyncio
import json
import uuid

import pytest

from gateway.cache import TtlCache
from gateway.cold import answer as coldanswer
from gateway.cold.blobs import BlobCache, BlobInvalid, ContextBlob, parse_blob
from gateway.cold.routes import RouteKeeper
from gateway.cold.warming import QueueFull, Warmer, WarmFailed
from gateway.invalidation import apply_message
from tenants.selectors import TenantRoute


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_the_blob_cache_is_bounded_in_bytes_single_flight_and_dropped_on_invalidation() -> None:
    loads: list[uuid.UUID] = []

    async def loader(tenant_id: uuid.UUID) -> ContextBlob | None:
        loads.append(tenant_id)
        await asyncio.sleep(0.01)
        return ContextBlob(tenant_id, {"tenant_id": str(tenant_id)}, 400)

    async def scenario() -> None:
        cache = BlobCache(max_bytes=1000, loader=loader)
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await asyncio.gather(*(cache.get(a) for _ in range(20)))
        assert loads == [a]  # 20 concurrent misses, one fetch
        await cache.get(b)
        await cache.get(a)  # a is now the most recent
        await cache.get(c)  # 1200 bytes > 1000: the least recent (b) goes
        assert a in cache and c in cache and b not in cache and cache.bytes == 800
        apply_message(
            f"tenant:{a}", routes=TtlCache(loader, ttl=1), devices=TtlCache(loader, ttl=1), on_tenant=cache.invalidate
        )
        assert a not in cache and cache.bytes == 400
        await cache.get(a)
        assert loads.count(a) == 2

    run(scenario())


def test_an_invalid_blob_is_absent_and_not_cached() -> None:
    async def loader(tenant_id: uuid.UUID) -> ContextBlob | None:
        raise BlobInvalid("flipped byte")

    async def scenario() -> None:
        cache = BlobCache(max_bytes=1000, loader=loader)
        tenant = uuid.uuid4()
        assert await cache.get(tenant) is None and tenant not in cache

    run(scenario())
    tenant = uuid.uuid4()
    with pytest.raises(BlobInvalid):
        parse_blob(b'{"tenant_id": "%s"}' % str(uuid.uuid4()).encode(), tenant)
    with pytest.raises(BlobInvalid):
        parse_blob(b"not json", tenant)


def test_one_warm_for_many_waiters_woken_in_order_and_a_full_queue_refuses() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        warms: list[uuid.UUID] = []

        async def warm(tenant_id: uuid.UUID, generation: int) -> str:
            warms.append(tenant_id)
            await release.wait()
            return "pod-1"

        warmer = Warmer(warm, queue_size=3, deadline=5)
        tenant = uuid.uuid4()
        tickets = [warmer.enter(tenant, 1) for _ in range(3)]
        with pytest.raises(QueueFull):
            warmer.enter(tenant, 1)
        woken: list[int] = []

        async def wait(i: int) -> None:
            assert await tickets[i].ready() == "pod-1"
            woken.append(i)

        waiting = [asyncio.ensure_future(wait(i)) for i in (2, 0, 1)]
        release.set()
        await asyncio.gather(*waiting)
        assert woken == [0, 1, 2] and warms == [tenant] and warmer.depth(tenant) == 0

    run(scenario())


def test_a_warm_that_overruns_its_deadline_fails_every_waiter() -> None:
    async def scenario() -> None:
        async def warm(tenant_id: uuid.UUID, generation: int) -> str:
            await asyncio.sleep(60)
            return "never"

        warmer = Warmer(warm, queue_size=10, deadline=0.05)
        tickets = [warmer.enter(uuid.UUID(int=1), 1) for _ in range(5)]
        for ticket in tickets:
            with pytest.raises(WarmFailed) as info:
                await ticket.ready()
            assert info.value.status == 504 and info.value.code == "warm_timeout"

    run(scenario())


def test_the_blob_cache_lists_its_tenants_most_recent_first() -> None:
    async def loader(tenant_id: uuid.UUID) -> ContextBlob | None:
        return ContextBlob(tenant_id, {"tenant_id": str(tenant_id)}, 10)

    async def scenario() -> None:
        cache = BlobCache(max_bytes=1000, loader=loader)
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        for tenant_id in (a, b, c, a):
            await cache.get(tenant_id)
        assert cache.tenants(10) == [a, c, b] and cache.tenants(2) == [a, c]

    run(scenario())


def test_the_route_keeper_rereads_the_routes_of_tenants_with_a_blob_in_one_load() -> None:
    def route(tenant_id: uuid.UUID, generation: int) -> TenantRoute:
        return TenantRoute(tenant_id, "B", "active", "node_based", "cold", generation, None)

    async def one_by_one(tenant_id: uuid.UUID) -> TenantRoute | None:
        loads.append([tenant_id])
        return route(tenant_id, 1)

    async def scenario() -> None:
        routes: TtlCache[uuid.UUID, TenantRoute | None] = TtlCache(one_by_one, ttl=5, clock=lambda: now[0])
        a, b, gone, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        async def load_many(ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantRoute]:
            loads.append(ids)
            routes.invalidate(b)  # b changes while the query runs: what it read for b is already stale
            return {a: route(a, 2), b: route(b, 2)}  # `gone` no longer exists

        keeper = RouteKeeper(routes, lambda limit: [a, b, gone][:limit], load_many, interval=1)
        assert await keeper.refresh() == 1
        assert loads == [[a, b, gone]]
        now[0] = 4.9
        assert (await routes.get(a)) == route(a, 2)  # in memory, as read by the keeper
        assert (await routes.get(b)) == route(b, 1) and loads[-1] == [b]  # not the stale read: loaded itself
        assert (await routes.get(gone)) == route(gone, 1) and loads[-1] == [gone]
        now[0] = 5.1  # the keeper's read expires like any other entry: it is never just extended
        await routes.get(a)
        assert loads[-1] == [a]
        assert other not in {tid for ids in loads for tid in ids}

    loads: list[list[uuid.UUID]] = []
    now = [0.0]
    run(scenario())


def test_the_route_keeper_runs_until_stopped_and_survives_a_failed_load() -> None:
    calls: list[int] = []

    async def load_many(ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantRoute]:
        calls.append(len(ids))
        if len(calls) == 1:
            raise OSError("database away")
        return {}

    async def one_by_one(tenant_id: uuid.UUID) -> TenantRoute | None:
        return None

    async def scenario() -> None:
        keeper = RouteKeeper(TtlCache(one_by_one, ttl=1), lambda limit: [uuid.uuid4()], load_many, interval=0.01)
        keeper.ensure_running()
        first = keeper.task
        keeper.ensure_running()
        assert keeper.task is first  # one loop
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        keeper.stop()
        await asyncio.sleep(0)
        assert first is not None and first.cancelled()

    run(scenario())


@pytest.mark.parametrize("kind", ["blob", "archived"])
def test_answer_chunks_are_the_json_of_each_event_framed_once(kind: str) -> None:
    text = 'Quotes " and \\ backslash, tab\tcontrol \x01, é 日本 \u2028 and  two  spaces {"json": 1}'
    parts = coldanswer.chunks(text, request_id='r"1', kind=kind, created=7)

    def event(delta: dict[str, str], finish: str | None = None) -> bytes:
        doc = {
            "id": coldanswer.completion_id('r"1'),
            "object": "chat.completion.chunk",
            "created": 7,
            "model": coldanswer.MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "percolate": {"cold_start": kind},
        }
        return b"data: " + json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"

    words = text.split(" ")
    expected = [event({"role": "assistant", "content": ""})]
    expected += [event({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    expected.append(event({}, "stop"))
    assert parts == expected
