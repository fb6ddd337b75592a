"""The cold path's pure pieces: the byte-bounded blob cache, invalidation, and the warming queue."""

import asyncio
import uuid

import pytest

from gateway.blobs import BlobCache, BlobInvalid, ContextBlob, parse_blob
from gateway.cache import TtlCache
from gateway.invalidation import apply_message
from gateway.warming import QueueFull, Warmer, WarmFailed


def run(coro):  # type: ignore[no-untyped-def]
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
