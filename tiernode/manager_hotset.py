"""The hot set: an LRU of the tenants whose store is open, bounded by ``MAX_HOT_TENANTS``, with the slots held by
loads in progress and the leases requests hold on hot tenants."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable

from tiernode.tenant_record import Tenant


class HotSet:
    def __init__(self, max_hot: int, clock: Callable[[], float]) -> None:
        self.max_hot = max_hot
        self._clock = clock
        self._lru: OrderedDict[uuid.UUID, Tenant] = OrderedDict()  # least recently used first
        self._reserved = 0  # slots held by loads in progress
        self._room = asyncio.Condition()

    # -- membership, in LRU order --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, tenant_id: uuid.UUID) -> bool:
        return tenant_id in self._lru

    def tenants(self) -> list[Tenant]:
        """The hot tenants, least recently used first."""
        return list(self._lru.values())

    def add(self, t: Tenant) -> None:
        self._lru[t.tenant_id] = t
        self.touch(t)

    def discard(self, tenant_id: uuid.UUID) -> None:
        self._lru.pop(tenant_id, None)

    def touch(self, t: Tenant) -> None:
        """``t`` was used now: it becomes the most recently used."""
        t.last_used = self._clock()
        if t.tenant_id in self._lru:
            self._lru.move_to_end(t.tenant_id)

    @property
    def slots_in_use(self) -> int:
        """Hot tenants plus loads in progress; never above ``max_hot``."""
        return len(self._lru) + self._reserved

    # -- slots -----------------------------------------------------------------------------------------------------

    async def reserve_slot(self, push_out: Callable[[Tenant], None]) -> None:
        """Hold a slot for a load. While the set is full, its least recently used tenant (preferring one no request
        is using right now) is taken out and handed to ``push_out``; if every slot is a load in progress, wait."""
        async with self._room:
            while self.slots_in_use >= self.max_hot:
                if self._lru:
                    victim = next((t for t in self._lru.values() if t.leases == 0), next(iter(self._lru.values())))
                    del self._lru[victim.tenant_id]
                    push_out(victim)
                else:
                    await self._room.wait()
            self._reserved += 1

    async def release_slot(self) -> None:
        async with self._room:
            self._reserved -= 1
            self._room.notify_all()

    # -- leases ----------------------------------------------------------------------------------------------------

    @staticmethod
    def acquire(t: Tenant, n: int = 1) -> None:
        """``n`` more requests use ``t``: its store stays open until they release it."""
        t.leases += n
        if t.leases:
            t.drained.clear()

    def release(self, t: Tenant) -> None:
        t.leases -= 1
        self.touch(t)
        if t.leases == 0:
            t.drained.set()
