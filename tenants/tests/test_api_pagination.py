"""Lists are walked to their end by following `next`, whatever the ties in created_at (item 2 of issue 20)."""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.utils import timezone
from rest_framework.test import APIClient

from core.api_pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from tenants.models import Tenant, TenantState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _seed(count: int, *, created_at: Any, tier: str = "B", prefix: str = "s") -> list[Tenant]:
    tenants = Tenant.objects.bulk_create(
        Tenant(email=f"{prefix}{i:05d}@example.com", tier=tier, created_at=created_at) for i in range(count)
    )
    TenantState.objects.bulk_create(TenantState(tenant=t) for t in tenants)
    return tenants


def _walk(client: APIClient, url: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.content
        body = response.json()
        seen.extend(row["id"] for row in body["results"])
        next_url = body["next"]
        pages += 1
        assert pages < 100, "next never ends"
    return seen, pages


def test_2700_tenants_of_one_seed_batch_are_all_reached_once(staff_api: APIClient) -> None:
    """DRF's CursorPagination served 1,600 of these and then the same page forever."""
    batch = timezone.now() - timedelta(days=1)
    tenants = _seed(2700, created_at=batch)
    newer = _seed(30, created_at=timezone.now(), tier="A", prefix="n")
    seen, pages = _walk(staff_api, "/api/tenants/")
    assert len(seen) == len(set(seen)) == 2730
    assert set(seen) == {str(t.id) for t in tenants + newer}
    assert seen[:30] == [str(t.id) for t in sorted(newer, key=lambda t: t.id, reverse=True)]
    assert seen[30:] == [str(t.id) for t in sorted(tenants, key=lambda t: t.id, reverse=True)]
    assert pages == 28


def test_a_filtered_walk_through_ties_reaches_every_match(staff_api: APIClient) -> None:
    batch = timezone.now()
    _seed(100, created_at=batch, tier="B")
    matches = _seed(1300, created_at=batch, tier="C", prefix="c")
    seen, _ = _walk(staff_api, "/api/tenants/?tier=C")
    assert sorted(seen) == sorted(str(t.id) for t in matches)


def test_rows_added_while_walking_do_not_shift_the_walk(staff_api: APIClient) -> None:
    batch = timezone.now() - timedelta(hours=1)
    tenants = _seed(250, created_at=batch)
    first = staff_api.get("/api/tenants/").json()
    _seed(50, created_at=timezone.now(), prefix="late")  # newer than the cursor: before it, never after
    seen = [row["id"] for row in first["results"]] + _walk(staff_api, first["next"])[0]
    assert sorted(seen) == sorted(str(t.id) for t in tenants)


def test_cursor_round_trip_and_form() -> None:
    import re

    created = timezone.now()
    row_id = uuid.uuid4()
    cursor = encode_cursor((created, row_id))
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (created, row_id)


def test_the_next_page_is_one_index_range_scan_at_any_depth(make_tenant: Any) -> None:
    """The page query is `(created_at, id) < (...)` on idx_tenants_created (created_at, id), read backwards: no
    sort, no filter that throws rows away, so a page costs the same at row 10 as at row 1,000,000."""
    make_tenant()
    position = (timezone.now(), uuid.uuid4())
    qs = Tenant.objects.filter(TupleLessThan(Tuple(F("created_at"), F("pk")), position)).order_by("-created_at", "-pk")
    with connection.cursor() as cursor:
        # A tiny test table: steer the planner off the plans it would pick for a few rows. With sorting "off", a
        # plan that still needs a Sort proves the index cannot give this order.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        sql, params = qs[:101].query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = json.dumps(cursor.fetchone()[0])
    assert "idx_tenants_created" in plan
    assert '"Sort"' not in plan
    assert "Index Cond" in plan and "Filter" not in plan
