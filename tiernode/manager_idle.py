"""The tier's idle timers: hot → warm and warm → cold after a period without use (``None``: never)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tiernode.config import NodeConfig
from tiernode.manager_eviction import Evictor
from tiernode.manager_hotset import HotSet
from tiernode.manager_registry import TenantRegistry
from tiernode.tenant_record import COLD, WARM

log = logging.getLogger("tiernode.manager")


class IdleTimer:
    def __init__(
        self,
        cfg: NodeConfig,
        *,
        registry: TenantRegistry,
        hot: HotSet,
        evictor: Evictor,
        clock: Callable[[], float],
    ) -> None:
        self._hot_to_warm = cfg.hot_to_warm_seconds
        self._warm_to_cold = cfg.warm_to_cold_seconds
        self._interval = cfg.sweep_interval_seconds
        self._registry = registry
        self._hot = hot
        self._evictor = evictor
        self._clock = clock

    async def sweep(self) -> None:
        """Apply the timers once, against the injected clock; a tenant a request holds stays hot."""
        now = self._clock()
        jobs = []
        if self._hot_to_warm is not None:
            for t in self._hot.tenants():
                if t.leases == 0 and now - t.last_used >= self._hot_to_warm:
                    self._hot.discard(t.tenant_id)
                    jobs.append(self._evictor.push_out(t, reason="idle"))
        if self._warm_to_cold is not None:
            for t in self._registry:
                if t.state == WARM and now - t.state_since >= self._warm_to_cold:
                    jobs.append(self._evictor.retire(t, COLD, reason="idle"))
        if jobs:
            await asyncio.gather(*jobs)

    async def run(self) -> None:
        """Sweep every ``PERCOLATE_IDLE_SWEEP_SECONDS`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("idle sweep failed")
