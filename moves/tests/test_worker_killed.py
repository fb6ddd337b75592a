"""A real Celery worker SIGKILLed in the middle of a move (after the eviction, before the switch); the message comes
back (acks_late, reject_on_worker_lost) and a second worker finishes the move from the recorded step."""

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from archival.tests.test_tasks import _worker
from moves import services
from moves.models import Move, MoveStatus, Step
from moves.tests.conftest import ACTOR, make_hot, stored_messages
from percolate_platform.tests.processes import wait_for
from tenants.models import State, TenantState


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis as the broker")
def test_worker_sigkilled_mid_move_then_a_second_worker_finishes_it(
    transactional_db: None, nodes: Any, make_tenant: Any, data_root: Path, tmp_path: Path
) -> None:
    b, a = nodes.start("B"), nodes.start("A")
    tenant = make_tenant(tier="B")
    make_hot(b, tenant, 4)
    move = services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "TENANT_DATA_ROOT": str(data_root),
        "PLATFORM_MASTER_KEY": settings.PLATFORM_MASTER_KEY.hex(),
        "DATABASE_CONN_MAX_AGE": "0",
        **{f"GATEWAY_PODS_{tier}": ",".join(pods) for tier, pods in settings.GATEWAY_TIER_PODS.items()},
        **{f"GATEWAY_DNS_{tier}": "" for tier in "ABC"},
    }
    queue = f"moves-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    first = _worker(queue, {**env, "MOVE_STEP_DELAY": f"{Step.EVICTED}=60"}, log)
    second = None
    try:
        from percolate_platform.celery import app

        app.send_task("moves.move_tenant", args=[str(move.id)], queue=queue)

        def evicted() -> bool:
            move.refresh_from_db()
            return move.step == Step.EVICTED

        wait_for(evicted, 30, f"the first worker to evict (log: {log.read_text()[-2000:] if log.exists() else ''})")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        move.refresh_from_db()
        assert (move.status, move.step) == (MoveStatus.RUNNING, Step.EVICTED)
        tenant.refresh_from_db()
        assert tenant.tier == "B"  # killed before the switch
        second = _worker(queue, env, log)

        def finished() -> bool:
            move.refresh_from_db()
            return move.finished_at is not None

        wait_for(finished, 40, f"the second worker to finish the move (log: {log.read_text()[-3000:]})")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
    move = Move.objects.get(pk=move.pk)
    assert (move.status, move.attempts) == (MoveStatus.COMPLETED, 2), move.error
    st = TenantState.objects.get(tenant=tenant)
    assert (st.state, st.pod_id, st.generation) == (State.HOT, a.pod_id, move.new_generation)
    assert a.call("POST", f"/internal/evict/{tenant.id}", {"generation": st.generation})[0] == 200
    assert stored_messages(data_root, tenant) == 2 * 4
