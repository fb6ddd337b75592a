"""A bounded in-process TTL cache with single-flight loading, for the gateway's per-request lookups.

Concurrent misses for one key share one load; entries expire after `ttl` seconds and can be dropped at once by
`invalidate` (driven by Redis pub/sub when a tenant or device changes). A `None` result is cached too (briefly), so a
flood of requests for an unknown tenant does not become a flood of database queries.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """One load per key at a time, shared by every concurrent caller, and a generation per key that `invalidate`
    bumps: a load that an invalidation overtook is handed to its callers but not kept."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self._generation: dict[K, int] = {}
        self._max = max_keys

    def generation(self, key: K) -> int:
        return self._generation.get(key, 0)

    def invalidate(self, key: K) -> None:
        self._generation[key] = self._generation.get(key, 0) + 1
        if len(self._generation) > self._max:
            self._generation.clear()

    async def load(self, key: K, loader: Callable[[K], Awaitable[V]], keep: Callable[[V], object]) -> V:
        inflight = self._inflight.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        started_at = self.generation(key)
        try:
            value = await loader(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)
        if self.generation(key) == started_at:  # not invalidated while loading
            keep(value)
        future.set_result(value)
        return value


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        loader: Callable[[K], Awaitable[V]],
        *,
        ttl: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._flight: SingleFlight[K, V] = SingleFlight(max_entries)
        self._on_lookup = on_lookup or (lambda hit: None)

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            self._entries.move_to_end(key)
            self._on_lookup(True)
            return entry[1]
        self._on_lookup(False)
        return await self._flight.load(key, self._loader, lambda value: self._store(key, value))

    def fresh(self, key: K) -> V | None:
        """The cached value if it has not expired, without loading (None otherwise). Does not count as a lookup."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def generation(self, key: K) -> int:
        """Bumped by every `invalidate` of the key: take it before a load, hand it to `put` after."""
        return self._flight.generation(key)

    def put(self, key: K, value: V, *, generation: int) -> bool:
        """Store a value loaded elsewhere (a batched refresh), unless the key was invalidated since `generation`."""
        if self._flight.generation(key) != generation:
            return False
        self._store(key, value)
        return True

    def _store(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        self._flight.invalidate(key)

    def clear(self) -> None:
        self._entries.clear()
