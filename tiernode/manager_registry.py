"""The tenants this pod holds (hot, closing or warm; a cold tenant has no record), their locks, and whether the pod
still takes new loads."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from tiernode.tenant_record import WARM, Tenant


class TenantRegistry:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tenants: dict[uuid.UUID, Tenant] = {}
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self.view: Mapping[uuid.UUID, Tenant] = MappingProxyType(self._tenants)  # read-only, always current
        self.draining = False  # set once by a shutdown: no new loads from then on

    def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        return self._tenants.get(tenant_id)

    def holds(self, t: Tenant) -> bool:
        """Whether ``t`` is still this pod's record of its tenant (not dropped, nor replaced by a newer record)."""
        return self._tenants.get(t.tenant_id) is t

    def add(self, t: Tenant) -> None:
        self._tenants[t.tenant_id] = t

    def drop(self, t: Tenant) -> None:
        del self._tenants[t.tenant_id]

    def __contains__(self, tenant_id: uuid.UUID) -> bool:
        return tenant_id in self._tenants

    def __iter__(self) -> Iterator[Tenant]:
        """A snapshot of the records, safe to iterate while tenants come and go."""
        return iter(list(self._tenants.values()))

    def lock(self, tenant_id: uuid.UUID) -> asyncio.Lock:
        """The lock that serialises a tenant's opens and closes (kept only while someone holds or waits on it)."""
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

    @property
    def warm_count(self) -> int:
        return sum(1 for t in self._tenants.values() if t.state == WARM)

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [t.describe(now) for t in self._tenants.values()]
