import asyncio

import pytest

from gateway.cache import TtlCache


def test_single_flight_ttl_and_invalidation() -> None:
    calls: list[str] = []
    now = [0.0]

    async def loader(key: str) -> str:
        calls.append(key)
        await asyncio.sleep(0.01)
        return key.upper()

    async def scenario() -> None:
        lookups: list[bool] = []
        cache: TtlCache[str, str] = TtlCache(loader, ttl=5, clock=lambda: now[0], on_lookup=lookups.append)
        assert await asyncio.gather(*(cache.get("a") for _ in range(50))) == ["A"] * 50
        assert calls == ["a"]
        assert await cache.get("a") == "A" and calls == ["a"]
        cache.invalidate("a")
        await cache.get("a")
        assert calls == ["a", "a"]
        now[0] = 6
        await cache.get("a")
        assert calls == ["a", "a", "a"]
        # 50 concurrent misses sharing one load, one hit, a miss after invalidation, a miss after expiry
        assert lookups.count(True) == 1 and lookups.count(False) == 52

    asyncio.run(scenario())


def test_invalidation_during_load_is_not_overwritten_and_errors_are_not_cached() -> None:
    release = asyncio.Event

    async def scenario() -> None:
        gate = release()
        fail = [True]

        async def loader(key: str) -> int:
            await gate.wait()
            if fail[0]:
                raise RuntimeError("db down")
            return 1

        cache: TtlCache[str, int] = TtlCache(loader, ttl=60)
        task = asyncio.create_task(cache.get("k"))
        await asyncio.sleep(0)
        cache.invalidate("k")
        gate.set()
        with pytest.raises(RuntimeError):
            await task
        fail[0] = False
        assert await cache.get("k") == 1

    asyncio.run(scenario())


def test_bounded_entries() -> None:
    async def loader(key: int) -> int:
        return key

    async def scenario() -> None:
        cache: TtlCache[int, int] = TtlCache(loader, ttl=60, max_entries=10)
        for i in range(100):
            await cache.get(i)
        assert len(cache._entries) == 10

    asyncio.run(scenario())


def test_put_stores_a_value_loaded_elsewhere_unless_invalidated_since() -> None:
    async def loader(key: str) -> str:
        raise AssertionError("not loaded through the cache")

    async def scenario() -> None:
        cache: TtlCache[str, str] = TtlCache(loader, ttl=5)
        taken = cache.generation("a")
        assert cache.put("a", "A", generation=taken) and await cache.get("a") == "A"
        taken = cache.generation("a")
        cache.invalidate("a")  # a change arrived while the value was being read: it is stale
        assert not cache.put("a", "old", generation=taken)
        assert cache.put("a", "new", generation=cache.generation("a")) and await cache.get("a") == "new"

    asyncio.run(scenario())
