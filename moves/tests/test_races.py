"""Requests racing each other on PostgreSQL (separate connections, started together): two moves of one tenant, and a
move against an archive; the tenant row lock lets exactly one through, the other gets a clear Conflict."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from archival import services as archival
from archival.models import ArchivalJob
from core.errors import Conflict
from moves import services
from moves.models import Move
from moves.tests.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at once, each in its own thread and database connection; their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_two_moves_of_one_tenant_at_once(make_tenant: Any, attempt: int) -> None:
    tenant = make_tenant(tier="B")
    results = race(
        lambda: services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False),
        lambda: services.tenant_move(tenant_id=tenant.id, tier="C", actor=ACTOR, enqueue=False),
    )
    moves = [r for r in results if isinstance(r, Move)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(moves) == 1 and len(refused) == 1, results
    assert "already moving" in refused[0].message
    assert Move.objects.filter(tenant=tenant).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_a_move_racing_an_archive(make_tenant: Any, attempt: int) -> None:
    tenant = make_tenant(tier="B")
    results = race(
        lambda: services.tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False),
        lambda: archival.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False),
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    started = Move.objects.filter(tenant=tenant).count() + ArchivalJob.objects.filter(tenant=tenant).count()
    assert started == 1
