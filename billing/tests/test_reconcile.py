"""Reconciliation after a gap longer than Stripe's retries, and the subscription sync, through stripe-python against
a local server answering with Stripe's shapes."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from billing.models import BillingEvent, StripeReconciliation, Subscription
from billing.subscriptions import desired_tier
from billing.tests.conftest import Customer, deliver
from billing.tests.helpers import asked_tier
from billing.tests.stripe_server import API_KEY, FakeStripe, fake_stripe
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stripe_api(settings: Any) -> Iterator[FakeStripe]:
    with fake_stripe(settings) as fake:
        yield fake


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_reconcile_feeds_the_events_a_long_outage_lost(client: Client, stripe_api: FakeStripe, settings: Any) -> None:
    customer = Customer(start=int(time.time()) - 5 * 86_400)
    events = [
        customer.checkout(),
        customer.subscription("created", price="price_tier_b"),
        customer.subscription("updated", price="price_tier_a", cancel_at_period_end=True),  # lost in the outage
        customer.invoice(paid=False),  # lost
        customer.invoice(paid=False),  # lost
        customer.invoice(paid=True),  # delivered live after the outage
    ]
    stripe_api.events = events
    for evt in (events[0], events[1], events[5]):
        deliver(client, evt)
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "B"  # the upgrade was lost

    out = run("stripe_reconcile")
    assert "listed 6 events" in out and "3 missing" in out
    assert set(BillingEvent.objects.values_list("stripe_event_id", flat=True)) == {e["id"] for e in events}
    assert set(BillingEvent.objects.values_list("processing_status", flat=True)) == {"processed"}
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "A"
    sub = Subscription.objects.get(stripe_subscription_id=customer.sub)
    assert (sub.status, sub.stripe_price_id, sub.cancel_at_period_end, sub.payment_failed_at) == (
        "active",
        "price_tier_a",
        True,
        None,
    )
    request = stripe_api.requests[0]
    assert request["headers"]["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"

    assert "0 missing" in run("stripe_reconcile")  # the next run starts where this one ended
    runs = list(StripeReconciliation.objects.order_by("started_at"))
    assert runs[1].since < runs[0].until and runs[1].since > runs[0].since


def test_reconcile_pages_through_stripe_and_honours_since(stripe_api: FakeStripe) -> None:
    base = int(time.time()) - 3 * 86_400
    customers = [Customer(start=base) for _ in range(60)]
    stripe_api.events = [evt for c in customers for evt in (c.checkout(), c.subscription("created"))]
    out = run("stripe_reconcile", "--since", datetime.fromtimestamp(base, tz=UTC).date().isoformat())
    assert "listed 120 events" in out and "120 missing" in out
    assert len([r for r in stripe_api.requests if r["path"] == "/v1/events"]) == 2  # 100 a page
    assert sum(asked_tier(t) == "B" for t in Tenant.objects.all()) == 60
    later = datetime.fromtimestamp(int(time.time()) + 60, tz=UTC).isoformat()
    assert "listed 0 events" in run("stripe_reconcile", "--since", later)


def test_reconcile_refuses_a_bad_since_and_a_missing_key(settings: Any) -> None:
    with pytest.raises(CommandError, match="invalid --since"):
        run("stripe_reconcile", "--since", "yesterday")
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        run("stripe_reconcile")


def test_sync_repairs_subscriptions_that_differ(client: Client, stripe_api: FakeStripe) -> None:
    kept, drifted = Customer(), Customer()
    deliver(client, kept.checkout())
    kept_created = kept.subscription("created", price="price_tier_b")
    deliver(client, kept_created)
    deliver(client, drifted.checkout())
    deliver(client, drifted.subscription("created", price="price_tier_b"))
    stranger = Customer()
    stripe_api.subscriptions = [
        kept_created["data"]["object"],
        drifted.subscription("deleted", price="price_tier_a", status="canceled")["data"]["object"],
        stranger.subscription("created")["data"]["object"],
    ]
    out = run("stripe_sync_subscriptions")
    assert "checked 3 subscriptions: 1 repaired, 1 without a tenant yet, 0 failed" in out
    assert f"repaired {drifted.sub}" in out
    sub = Subscription.objects.get(stripe_subscription_id=drifted.sub)
    assert (sub.status, sub.stripe_price_id) == ("canceled", "price_tier_a")
    drifted_tenant = Tenant.objects.get(email=drifted.email)
    assert desired_tier(drifted_tenant) == "C" and drifted_tenant.tier == "C"  # (its move to B rolled back: no pods)
    assert asked_tier(Tenant.objects.get(email=kept.email)) == "B"
    assert "0 repaired" in run("stripe_sync_subscriptions")


def test_sync_exits_non_zero_when_a_row_cannot_be_repaired(client: Client, stripe_api: FakeStripe) -> None:
    c = Customer()
    deliver(client, c.checkout())
    stripe_api.subscriptions = [c.subscription("updated", price="price_unknown")["data"]["object"]]
    with pytest.raises(CommandError, match="1 subscriptions could not be repaired"):
        run("stripe_sync_subscriptions")
