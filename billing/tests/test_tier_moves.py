"""Billing through the tier-move service to real tier-node processes: a checkout and a subscription change end with
the tenant on its new tier's pod; a cancellation moves it to the free tier; a move already running is followed."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from billing.models import BillingEvent
from billing.tests.conftest import Customer, deliver
from moves.models import Move
from moves.tests.conftest import Nodes, _nodes
from tenants.models import Tenant, TenantState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tier_nodes(tmp_path: Path, settings: Any) -> Iterator[Nodes]:
    root = tmp_path / "tenant-data"
    root.mkdir()
    settings.TENANT_DATA_ROOT = root
    settings.TIER_DATA_ROOTS = {"A": "", "B": "", "C": ""}
    for nodes in _nodes(tmp_path, settings, {"A": root, "B": root, "C": root}):
        for tier in "ABC":
            nodes.start(tier)
        yield nodes


def test_subscription_changes_move_the_tenant_between_real_tiers(client: Client, tier_nodes: Nodes) -> None:
    customer = Customer()
    deliver(client, customer.checkout())
    tenant = Tenant.objects.get(email=customer.email)
    assert tenant.tier == "C"

    deliver(client, customer.subscription("created", price="price_tier_a"))
    tenant.refresh_from_db()
    move = Move.objects.get(tenant=tenant)
    assert (move.status, move.to_tier, move.requested_by) == ("completed", "A", "service:billing")
    assert tenant.tier == "A"
    state = TenantState.objects.get(tenant=tenant)
    assert state.pod_id == tier_nodes.by_tier["A"].pod_id and state.tier_deployment == "tier-a"

    deliver(client, customer.subscription("deleted", price="price_tier_a", status="canceled"))
    tenant.refresh_from_db()
    assert tenant.tier == "C"
    assert list(Move.objects.filter(tenant=tenant).order_by("created_at").values_list("to_tier", "status")) == [
        ("A", "completed"),
        ("C", "completed"),
    ]


def test_a_change_during_another_move_is_followed_once_that_move_ends(client: Client, tier_nodes: Nodes) -> None:
    from billing.subscriptions import tier_follow
    from core.audit import Actor
    from moves.services import move_run, tenant_move

    customer = Customer()
    deliver(client, customer.checkout())
    tenant = Tenant.objects.get(email=customer.email)
    staff_move = tenant_move(tenant_id=tenant.id, tier="B", actor=Actor.system("test:staff"), enqueue=False)
    evt = customer.subscription("created", price="price_tier_a")
    deliver(client, evt)  # the service refuses a second move while B runs: the event is still processed
    assert BillingEvent.objects.get(stripe_event_id=evt["id"]).processing_status == "processed"
    assert Move.objects.filter(tenant=tenant).count() == 1
    move_run(move_id=staff_move.id)
    tenant.refresh_from_db()
    assert tenant.tier == "B"
    assert tier_follow(tenant_id=tenant.id)  # what billing.follow_tier runs once the other move has ended
    tenant.refresh_from_db()
    assert tenant.tier == "A"
