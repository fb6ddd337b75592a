"""The hot set: an LRU bounded by ``MAX_HOT_TENANTS``, its slot reservations, and the leases on hot tenants."""

from __future__ import annotations

from tiernode.manager_eviction import Eviction
from tiernode.tenant_record import CLOSING, WARM, Tenant


class HotSet(Eviction):
    """Part of TenantManager: leases and LRU order; reserving a slot may retire the least recently used tenant."""

    def _acquire(self, t: Tenant, n: int = 1) -> None:
        t.leases += n
        if t.leases:
            t.drained.clear()

    def release(self, t: Tenant) -> None:
        t.leases -= 1
        self._touch(t)
        if t.leases == 0:
            t.drained.set()

    async def _reserve_slot(self) -> None:
        async with self._room:
            while len(self.hot) + self._reserved >= self.max_hot:
                if self.hot:
                    # Least recently used, preferring one no request is using right now.
                    victim = next((t for t in self.hot.values() if t.leases == 0), next(iter(self.hot.values())))
                    del self.hot[victim.tenant_id]
                    victim.state = CLOSING
                    self._spawn(self.retire(victim, WARM, reason="lru", only_if_closing=True))
                else:
                    await self._room.wait()
            self._reserved += 1

    async def _release_slot(self) -> None:
        async with self._room:
            self._reserved -= 1
            self._room.notify_all()

    def _touch(self, t: Tenant) -> None:
        t.last_used = self.clock()
        if t.tenant_id in self.hot:
            self.hot.move_to_end(t.tenant_id)
