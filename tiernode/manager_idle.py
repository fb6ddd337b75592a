"""The tier's idle timers: hot → warm and warm → cold after a period without use."""

from __future__ import annotations

import asyncio
import logging

from tiernode.manager_eviction import Eviction
from tiernode.tenant_record import CLOSING, COLD, WARM

log = logging.getLogger("tiernode.manager")


class IdleTimers(Eviction):
    """Part of TenantManager: the idle sweep."""

    async def sweep(self) -> None:
        """Apply the tier's idle timers once (hot → warm, warm → cold) against the injected clock."""
        now = self.clock()
        jobs = []
        if self.cfg.hot_to_warm_seconds is not None:
            for t in list(self.hot.values()):
                if t.leases == 0 and now - t.last_used >= self.cfg.hot_to_warm_seconds:
                    del self.hot[t.tenant_id]
                    t.state = CLOSING
                    jobs.append(self.retire(t, WARM, reason="idle", only_if_closing=True))
        if self.cfg.warm_to_cold_seconds is not None:
            for t in list(self.tenants.values()):
                if t.state == WARM and now - t.state_since >= self.cfg.warm_to_cold_seconds:
                    jobs.append(self.retire(t, COLD, reason="idle"))
        if jobs:
            await asyncio.gather(*jobs)

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sweep_interval_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("idle sweep failed")
