"""State reports to the platform: one per transition, in the background, retried while the platform is down."""

from __future__ import annotations

import socket
import time
import uuid

from tiernode.tests.conftest import FakePlatform, eventually, running, sample


async def test_every_transition_is_reported_with_the_generation(make_node, platform, clock) -> None:
    app = make_node(PLATFORM_URL=platform.url)
    async with running(app) as client:
        tid = uuid.uuid4()
        await client.warm(tid, 3)
        await eventually(lambda: platform.reports_for(tid) == [("hot", 3)])
        clock.advance(300)
        await app.manager.sweep()
        await eventually(lambda: platform.reports_for(tid)[-1] == ("warm", 3))
        await client.chat(tid, "back")
        await eventually(lambda: platform.reports_for(tid)[-1] == ("hot", 3))
        await client.evict(tid, 3)
        await eventually(lambda: platform.reports_for(tid) == [("hot", 3), ("warm", 3), ("hot", 3), ("cold", 3)])
        assert {r["pod_id"] for r in platform.reports} == {"tier-b-test-0"}


async def test_reports_are_retried_while_the_platform_is_down_and_never_block(make_node, platform) -> None:
    platform.down = True
    app = make_node(PLATFORM_URL=platform.url)
    async with running(app) as client:
        tid = uuid.uuid4()
        started = time.perf_counter()
        assert (await client.chat(tid, "hello", generation=1)).status == 200
        assert time.perf_counter() - started < 1.0  # the request did not wait for the platform
        await eventually(lambda: sample(app, "percolate_tenant_state_reports_total", result="retry") >= 3)
        assert platform.reports == [] and tid in app.reporter.pending
        platform.down = False
        await eventually(lambda: platform.reports_for(tid) == [("hot", 1)])
        await eventually(lambda: app.reporter.pending == {})  # cleared once the platform's answer is read


async def test_a_platform_that_is_not_listening_gets_the_latest_state_once_it_is(make_node) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_node(PLATFORM_URL=f"http://127.0.0.1:{port}")
    late = FakePlatform()
    try:
        async with running(app) as client:
            tid = uuid.uuid4()
            await client.warm(tid, 1)
            await client.evict(tid, 1)  # supersedes the unsent "hot"
            await client.warm(tid, 2)  # supersedes "cold"
            await eventually(lambda: sample(app, "percolate_tenant_state_reports_total", result="retry") >= 2)
            late.start(port=port)
            await eventually(lambda: late.reports_for(tid) == [("hot", 2)])
            assert sample(app, "percolate_tenant_state_reports_total", result="superseded") == 2
        assert late.reports_for(tid) == [("hot", 2), ("cold", 2)]  # shutdown released it
    finally:
        late.stop()


async def test_a_stale_generation_from_the_platform_fences_the_tenant(make_node, platform, tmp_path) -> None:
    app = make_node(PLATFORM_URL=platform.url)
    async with running(app) as client:
        tid = uuid.uuid4()
        platform.stale.add(str(tid))  # another pod got the tenant with a newer generation
        await client.chat(tid, "hello", generation=1)
        await eventually(lambda: tid not in app.manager.tenants)
        assert 'percolate_tenant_evictions_total{reason="fenced"} 1.0' in app.metrics.render().decode()
        assert not (tmp_path / "objects" / "tenants" / str(tid) / "context.bin").exists()
