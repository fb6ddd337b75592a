"""The tenant manager: which tenants this pod holds, in which state, and the moves between states.

States on the pod (the platform's names):

- **hot**: the tenant's RocksDB is open and it is in the hot set, an LRU bounded by ``MAX_HOT_TENANTS``.
- **warm**: flushed and closed (its context blob written), still assigned to this pod with its generation, so it
  reloads without the platform; costs no memory beyond a small record.
- **cold**: the pod has let go of it (the record is gone).

Moves: a load (cold/warm → hot) on ``/internal/warm`` or a chat; the LRU bound and the hot→warm idle timer (warm →
hot again on use); the warm→cold idle timer; ``/internal/evict`` (→ cold); shutdown (→ cold). Every move out of hot
flushes and closes the store and writes a fresh sealed context blob; every move is reported to the platform in the
background.

Concurrency: loading is single-flight (one task per tenant, shared by every caller); each tenant's open/close moves
are serialised by a per-tenant lock; requests hold a lease on a hot tenant and its store is closed only once the
leases drain, so a chat never writes to a closed store. The hot set never exceeds its bound: a load reserves its
slot first, evicting the least recently used tenant (or waiting, if every slot is a load in progress).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tiernode.manager_errors import Draining as Draining
from tiernode.manager_errors import LoadFailed as LoadFailed
from tiernode.manager_errors import ManagerError as ManagerError
from tiernode.manager_errors import StaleGeneration as StaleGeneration
from tiernode.manager_errors import UnknownGeneration as UnknownGeneration
from tiernode.manager_idle import IdleTimers
from tiernode.manager_loading import Loading
from tiernode.manager_state import KeyFetcher as KeyFetcher
from tiernode.tenant_record import CLOSING as CLOSING
from tiernode.tenant_record import COLD
from tiernode.tenant_record import HOT as HOT
from tiernode.tenant_record import WARM as WARM
from tiernode.tenant_record import Tenant as Tenant

log = logging.getLogger(__name__)


class TenantManager(Loading, IdleTimers):
    """The composed manager. Its parts: state and plumbing (``manager_state``), eviction and blob writing
    (``manager_eviction``), the hot set (``manager_hotset``), loading (``manager_loading``), idle timers
    (``manager_idle``).
    """

    def describe(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [t.describe(now) for t in self.tenants.values()]

    async def shutdown(self, deadline: float | None = None) -> None:
        """Drain: refuse new loads, then flush, close and blob every tenant, and report them cold. Past ``deadline``
        seconds the context blobs still being written are abandoned (flush, close and report still happen)."""
        self.draining = True
        await self.settle()
        retiring = [asyncio.ensure_future(self.retire(t, COLD, reason="shutdown")) for t in list(self.tenants.values())]
        if retiring:
            _, late = await asyncio.wait(retiring, timeout=deadline)
            if late:
                log.warning(
                    "drain deadline of %s s passed: %d tenants go cold without a context blob", deadline, len(late)
                )
                self.drain_cut.set()
            await asyncio.gather(*retiring, return_exceptions=True)
        await self.settle()
        self._disk.shutdown(wait=True)
