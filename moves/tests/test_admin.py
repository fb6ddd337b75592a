"""Tier moves in the admin: the tenant form and the "Move to tier…" action start moves, the tenant page shows the
move in progress and the history, the move list filters and searches on indexes and never counts the table."""

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import User
from core.admin_paginator import EstimatedCountPaginator
from moves.models import Move, MoveStatus
from moves.services import tenant_move
from moves.tests.conftest import ACTOR
from tenants.models import AuditLog, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(superuser)
    return client


def listed(client: Client, **params: str) -> list[Move]:
    response = client.get(reverse("admin:moves_move_changelist"), params)
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def test_move_to_tier_action_asks_for_the_tier_then_starts_moves(
    root_client: Client, make_tenant: Callable[..., Tenant]
) -> None:
    a, b = make_tenant(tier="B"), make_tenant(tier="C")
    changelist = reverse("admin:tenants_tenant_changelist")
    page = root_client.post(changelist, {"action": "move_to_tier", "_selected_action": [a.pk, b.pk]})
    assert page.status_code == 200 and 'name="tier"' in page.content.decode()
    assert not Move.objects.exists()
    done = root_client.post(
        changelist,
        {"action": "move_to_tier", "_selected_action": [a.pk, b.pk], "post": "yes", "tier": "A", "reason": "upsell"},
    )
    assert done.status_code == 302
    moves = {m.tenant_id: m for m in Move.objects.all()}
    assert {m.to_tier for m in moves.values()} == {"A"} and set(moves) == {a.pk, b.pk}
    assert {m.reason for m in moves.values()} == {"upsell"} and {m.requested_by for m in moves.values()} == {
        "user:root"
    }
    row = AuditLog.objects.get(tenant=a, action="tenant.move_requested")
    assert row.ip_address == "203.0.113.9"


def test_action_without_a_tier_starts_nothing(root_client: Client, tenant: Tenant) -> None:
    changelist = reverse("admin:tenants_tenant_changelist")
    page = root_client.post(
        changelist, {"action": "move_to_tier", "_selected_action": [tenant.pk], "post": "yes", "tier": "Z"}
    )
    assert page.status_code == 200 and not Move.objects.exists()


def test_action_reports_a_refused_move(root_client: Client, tenant: Tenant) -> None:
    tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    changelist = reverse("admin:tenants_tenant_changelist")
    response = root_client.post(
        changelist,
        {"action": "move_to_tier", "_selected_action": [tenant.pk], "post": "yes", "tier": "C"},
        follow=True,
    )
    assert "already moving to tier A" in response.content.decode()
    assert Move.objects.count() == 1


def test_tenant_page_shows_the_move_in_progress_and_the_history(root_client: Client, tenant: Tenant) -> None:
    done = tenant_move(tenant_id=tenant.id, tier="B", actor=ACTOR)  # a no-op, finished at once
    running = tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    html = root_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert "Moving to tier A" in html and str(running.pk) in html
    assert reverse("admin:moves_move_change", args=[done.pk]) in html
    assert "tier moves" in html


def test_move_list_filters_and_searches(root_client: Client, make_tenant: Callable[..., Tenant]) -> None:
    a = make_tenant(email="ada@example.com", tier="B")
    b = make_tenant(email="bob@example.com", tier="C")
    to_a = tenant_move(tenant_id=a.id, tier="A", actor=ACTOR, enqueue=False)
    noop = tenant_move(tenant_id=b.id, tier="C", actor=ACTOR)
    assert {m.pk for m in listed(root_client)} == {to_a.pk, noop.pk}
    assert [m.pk for m in listed(root_client, status__exact=MoveStatus.PENDING)] == [to_a.pk]
    assert [m.pk for m in listed(root_client, to_tier__exact="C")] == [noop.pk]
    assert [m.pk for m in listed(root_client, q="ADA@")] == [to_a.pk]
    assert [m.pk for m in listed(root_client, q=str(b.pk))] == [noop.pk]
    assert [m.pk for m in listed(root_client, q=str(to_a.pk))] == [to_a.pk]
    assert listed(root_client, q="not-a-uuid-or-email-prefix-zzz") == []
    assert len(listed(root_client, created_at__gte="2000-01-01 00:00:00+00:00")) == 2


def test_move_pages_are_view_only(root_client: Client, tenant: Tenant) -> None:
    move = tenant_move(tenant_id=tenant.id, tier="A", actor=ACTOR, enqueue=False)
    page = root_client.get(reverse("admin:moves_move_change", args=[move.pk]))
    assert page.status_code == 200 and "Save" not in page.content.decode()
    assert root_client.get(reverse("admin:moves_move_add")).status_code == 403
    assert root_client.post(reverse("admin:moves_move_delete", args=[move.pk])).status_code == 403


def test_staff_without_permission_is_refused(staff_without_permissions: User) -> None:
    client = Client()
    client.force_login(staff_without_permissions)
    assert client.get(reverse("admin:moves_move_changelist")).status_code == 403


def test_move_list_is_built_for_a_million_rows() -> None:
    model_admin = admin.site._registry[Move]
    assert model_admin.paginator is EstimatedCountPaginator
    assert model_admin.show_full_result_count is False and model_admin.show_facets == admin.ShowFacets.NEVER
    assert not model_admin.date_hierarchy
    with connection.cursor() as cursor:  # judge what the index can do, not what the planner picks for a few rows
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        assert "idx_tenant_moves_created" in Move.objects.order_by("-created_at", "-id")[:50].explain()
        assert "idx_tenant_moves_status" in Move.objects.filter(status="failed").order_by("-created_at")[:50].explain()
