"""The hot set on its own (it needs only a clock): which tenant a full set pushes out, and loads waiting for room."""

from __future__ import annotations

import asyncio
import uuid

from tiernode.manager_hotset import HotSet
from tiernode.tenant_record import Tenant
from tiernode.tests.conftest import FakeClock


async def test_a_full_set_pushes_out_the_least_recently_used_tenant_no_request_holds() -> None:
    clock = FakeClock()
    hot = HotSet(2, clock)
    a, b = Tenant(uuid.uuid4(), 1), Tenant(uuid.uuid4(), 1)
    hot.add(a)
    hot.add(b)
    hot.acquire(a)  # a request uses a, the least recently used
    pushed: list[Tenant] = []
    await hot.reserve_slot(pushed.append)
    assert pushed == [b] and [t.tenant_id for t in hot.tenants()] == [a.tenant_id]
    assert hot.slots_in_use == 2 and not a.drained.is_set()
    hot.release(a)
    assert a.drained.is_set() and a.last_used == clock.now


async def test_when_every_tenant_is_held_the_least_recently_used_still_goes() -> None:
    hot = HotSet(1, FakeClock())
    a = Tenant(uuid.uuid4(), 1)
    hot.add(a)
    hot.acquire(a)
    pushed: list[Tenant] = []
    await hot.reserve_slot(pushed.append)
    assert pushed == [a] and len(hot) == 0  # its close waits for the lease to drain (Evictor.retire)


async def test_a_load_waits_while_every_slot_is_a_load_in_progress() -> None:
    hot = HotSet(1, FakeClock())
    await hot.reserve_slot(lambda t: None)
    second = asyncio.create_task(hot.reserve_slot(lambda t: None))
    await asyncio.sleep(0.01)
    assert not second.done() and hot.slots_in_use == 1
    await hot.release_slot()
    await asyncio.wait_for(second, 1)
    assert hot.slots_in_use == 1
