"""No message lost: clients chat with a tenant through the real gateway, some at once, while it is moved B -> A -> C
by the real move service; afterwards its store holds each message exactly once, and every request got a complete
answer or a clean error (a refusal before any answer, retried as a client honouring Retry-After does)."""

import collections
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from bench.tiermove_stack import Outcome, Stack
from gateway.auth.tokens import mint_platform_token
from moves import services
from moves.models import MoveStatus, Step
from moves.tests.conftest import ACTOR
from tenants.models import TenantState
from tiernode.store import TenantStore

pytestmark = pytest.mark.django_db(transaction=True)
N = 30


@pytest.fixture
def stack(tmp_path: Path, settings: Any) -> Iterator[Stack]:
    db = connection.settings_dict
    live = Stack(
        root=tmp_path,
        database_url=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        redis_url=settings.REDIS_URL or "redis://127.0.0.1:6379/0",
        token=settings.PLATFORM_SERVICE_TOKEN,
        master_key_hex=settings.PLATFORM_MASTER_KEY.hex(),
    ).start()
    settings.GATEWAY_TIER_PODS = live.pods()
    settings.GATEWAY_TIER_DNS = {tier: "" for tier in "ABC"}
    settings.TENANT_DATA_ROOT = live.data_root
    settings.TIER_DATA_ROOTS = {tier: "" for tier in "ABC"}
    try:
        yield live
    finally:
        live.stop()


def send(stack: Stack, token: str, i: int) -> tuple[list[Outcome], Outcome]:
    """One message, retried after clean refusals (nothing of it was answered or stored); (refusals, final)."""
    refused: list[Outcome] = []
    for _attempt in range(8):
        outcome = stack.chat(token, f"note-{i:03d} please remember", stream=i % 3 != 0)
        if outcome.complete or not outcome.clean_error or outcome.content:
            return refused, outcome
        refused.append(outcome)
        time.sleep(0.3)
    return refused, outcome


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis for the gateway's invalidations")
def test_messages_sent_while_moving_b_a_c_are_stored_exactly_once(
    stack: Stack, make_tenant: Any, step_hook: Any
) -> None:
    tenant = make_tenant(tier="B")
    token = mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=tenant.id)
    first = stack.chat(token, "hello before the moves", stream=True)
    assert first.complete, first
    # Widen each move's held window so requests surely arrive during it (fenced ... warmed).
    step_hook(lambda step, _move: time.sleep(0.4) if step in (Step.FENCED, Step.SWITCHED) else None)
    moves: list[Any] = []

    def mover() -> None:  # the moves run while the clients chat (as a worker would run them)
        try:
            for tier in ("A", "C"):
                time.sleep(0.3)
                move = services.tenant_move(tenant_id=tenant.id, tier=tier, actor=ACTOR, enqueue=False)
                moves.append(services.move_run(move_id=move.id))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        moving = pool.submit(mover)
        futures = []
        for i in range(N):
            futures.append(pool.submit(send, stack, token, i))
            time.sleep(0.08)
        results = [f.result(timeout=120) for f in futures]
        moving.result(timeout=60)
    assert [m.status for m in moves] == [MoveStatus.COMPLETED] * 2, [m.error for m in moves]
    finals = [final for _, final in results]
    assert all(o.complete for o in finals), [o for o in finals if not o.complete]
    refusals = [r for refused, _ in results for r in refused]
    assert all(r.clean_error for r in refusals), refusals
    assert max(o.waited_ms for o in finals) > 300  # some requests were held through a move
    state = TenantState.objects.get(tenant=tenant)
    assert state.tier_deployment == "tier-c"
    from tenants.pods import evict

    evict(stack.internal("C"), tenant.id, generation=state.generation, timeout=10)
    store = TenantStore(stack.data_root, tenant.id)
    try:
        users = [m["content"] for m in store.recent_messages(10_000) if m["role"] == "user"]
    finally:
        store.close()
    counts = collections.Counter(users)
    for i in range(N):
        assert counts[f"note-{i:03d} please remember"] == 1, (i, counts)
    assert counts["hello before the moves"] == 1
