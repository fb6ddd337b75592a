"""The worker's metrics endpoint counts finished tier moves by tiers and result, and their durations."""

from typing import Any

from prometheus_client import generate_latest

from moves.models import Move, MoveStatus
from moves.services import tenant_move
from moves.tests.conftest import ACTOR
from percolate_platform.worker_metrics import build_registry


def test_moves_total_and_duration_histogram(db: None, make_tenant: Any) -> None:
    done = tenant_move(tenant_id=make_tenant(tier="B").id, tier="A", actor=ACTOR, enqueue=False)
    failed = tenant_move(tenant_id=make_tenant(tier="C").id, tier="B", actor=ACTOR, enqueue=False)
    tenant_move(tenant_id=make_tenant(tier="C").id, tier="C", actor=ACTOR)  # a no-op: not a move at all
    Move.objects.filter(pk=done.pk).update(status=MoveStatus.COMPLETED, finished_at=done.created_at, duration_ms=400)
    Move.objects.filter(pk=failed.pk).update(
        status=MoveStatus.ROLLED_BACK, finished_at=failed.created_at, duration_ms=3000
    )
    text = generate_latest(build_registry()).decode()
    assert 'percolate_tier_moves_total{from="B",result="completed",to="A"} 1.0' in text
    assert 'percolate_tier_moves_total{from="C",result="rolled_back",to="B"} 1.0' in text
    assert 'to="C"' not in text
    assert 'percolate_tier_move_duration_seconds_bucket{le="0.5",result="all"} 1.0' in text
    assert 'percolate_tier_move_duration_seconds_bucket{le="5.0",result="all"} 2.0' in text
    assert 'percolate_tier_move_duration_seconds_count{result="all"} 2.0' in text
    assert 'percolate_tier_move_duration_seconds_sum{result="all"} 3.4' in text
