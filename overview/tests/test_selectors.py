"""The overview's counts: exact on a small table; on a big one (PostgreSQL), small states exact per tier and big ones
estimated per cell, never a join counted over the big states."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from overview import selectors
from tenants.models import State, TenantState


def test_small_table_counts_exactly(make_tenant) -> None:
    for tier in ("A", "B", "B"):
        make_tenant(tier=tier)
    counts = selectors.tenant_counts()
    assert counts["rows"]["B"]["cold"] == 2 and counts["rows"]["all"]["total"] == 3
    assert not counts["estimated"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates are PostgreSQL's planner's")
def test_big_table_estimates_big_states_and_counts_small_ones(
    make_tenant, monkeypatch, django_assert_max_num_queries
) -> None:
    tenants = [make_tenant(tier="C") for _ in range(40)]
    hot = tenants[0]
    TenantState.objects.filter(tenant=hot).update(state=State.HOT, pod_id="p:1", tier_deployment="tier-c")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenants; ANALYZE tenant_states")
    monkeypatch.setattr(selectors, "EXACT_COUNT_THRESHOLD", 10)  # 40 rows count as "big" here
    with CaptureQueriesContext(connection) as queries:
        counts = selectors.tenant_counts()
    joins = [q["sql"] for q in queries if "JOIN" in q["sql"] and not q["sql"].startswith("EXPLAIN")]
    assert len(joins) == 1 and "'cold'" not in joins[0]  # one GROUP BY, over the small states only
    assert counts["estimated"]
    assert counts["rows"]["C"]["hot"] == 1  # a small state: exact
    assert counts["rows"]["C"]["cold"] > 10  # a big one: the planner's estimate of about 39
