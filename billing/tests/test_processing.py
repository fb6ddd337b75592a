"""Store, then process: provisioning once, duplicates, failures then success, crashes mid-way, the attempt limit,
unknown types, events that arrive before their customer's checkout."""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing import processing
from billing.models import BillingEvent, ProcessingStatus, Subscription
from billing.tests.conftest import Customer, SimulatedCrash, deliver
from billing.tests.helpers import asked_tier, feed
from tenants.models import AuditLog, Tenant, TenantKey

pytestmark = pytest.mark.django_db(transaction=True)


def event_row(evt: dict[str, Any]) -> BillingEvent:
    return BillingEvent.objects.get(stripe_event_id=evt["id"])


def test_checkout_provisions_a_tenant_once(client: Client, customer: Customer) -> None:
    evt = customer.checkout()
    for _ in range(3):
        assert deliver(client, evt).status_code == 200
    tenant = Tenant.objects.get(email=customer.email)
    assert tenant.tier == "C"  # free until the subscription's own event says which price
    assert TenantKey.objects.filter(tenant=tenant).count() == 1
    sub = Subscription.objects.get(tenant=tenant)
    assert (sub.stripe_customer_id, sub.stripe_subscription_id) == (customer.customer, customer.sub)
    assert [m.to for m in mail.outbox] == [[customer.email]]
    row = event_row(evt)
    assert (row.processing_status, row.attempts, row.tenant_id) == ("processed", 1, tenant.id)
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.created").count() == 1


def test_a_second_checkout_event_for_the_same_subscription_provisions_nothing(customer: Customer) -> None:
    """A replayed checkout (new event id, same session), as reconciliation or a resend could bring."""
    assert feed(customer.checkout()) == "processed"
    assert feed(customer.checkout()) == "processed"
    assert Tenant.objects.filter(email=customer.email).count() == 1
    assert Subscription.objects.count() == 1
    assert len(mail.outbox) == 1


def test_subscription_event_sets_row_and_tier(client: Client, customer: Customer) -> None:
    deliver(client, customer.checkout())
    deliver(client, customer.subscription("created", price="price_tier_a", cancel_at_period_end=True))
    sub = Subscription.objects.get(stripe_subscription_id=customer.sub)
    assert (sub.status, sub.tier, sub.stripe_price_id, sub.cancel_at_period_end) == (
        "active",
        "A",
        "price_tier_a",
        True,
    )
    assert sub.current_period_end - sub.current_period_start == timedelta(days=30)
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "A"


def test_events_before_the_checkout_wait_for_it(client: Client, customer: Customer) -> None:
    created = customer.subscription("created", price="price_tier_a")
    deliver(client, created)
    row = event_row(created)
    assert row.processing_status == "failed" and "checkout" in (row.last_error or "")
    deliver(client, customer.checkout())  # processing the checkout sends the waiting event again
    assert event_row(created).processing_status == "processed"
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "A"


def test_unknown_types_are_stored_and_ignored(client: Client) -> None:
    evt = Customer().subscription("created")
    evt["type"] = "customer.tax_id.created"
    assert deliver(client, evt).status_code == 200
    assert event_row(evt).processing_status == "ignored"
    assert deliver(client, evt).status_code == 200
    assert event_row(evt).attempts == 1


def test_a_handler_that_fails_then_succeeds_on_the_retry(client: Client, customer: Customer, settings: Any) -> None:
    deliver(client, customer.checkout())
    evt = customer.subscription("created", price="price_new")
    deliver(client, evt)
    row = event_row(evt)
    assert row.processing_status == "failed"
    assert "price_new" in (row.last_error or "")
    assert row.next_attempt_at is not None and row.next_attempt_at > timezone.now()
    assert Subscription.objects.get().status == "incomplete"  # the failed attempt left nothing behind
    settings.STRIPE_PRICE_TIERS = {**settings.STRIPE_PRICE_TIERS, "price_new": "A"}
    assert processing.retry_due() == []  # backoff not over
    assert processing.retry_due(now=row.next_attempt_at + timedelta(seconds=1)) == [row.pk]
    row.refresh_from_db()
    assert (row.processing_status, row.attempts, row.last_error) == ("processed", 2, None)
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "A"


def test_a_duplicate_of_a_failed_event_is_processed_again(client: Client, customer: Customer, settings: Any) -> None:
    deliver(client, customer.checkout())
    evt = customer.subscription("created", price="price_new")
    deliver(client, evt)
    settings.STRIPE_PRICE_TIERS = {**settings.STRIPE_PRICE_TIERS, "price_new": "A"}
    deliver(client, evt)  # Stripe's retry of the same event
    assert event_row(evt).processing_status == "processed"


@pytest.mark.parametrize("step", ["claimed", "handled"])
def test_a_crash_mid_processing_leaves_the_event_to_run_again(customer: Customer, crash_at: Any, step: str) -> None:
    feed(customer.checkout())
    evt = customer.subscription("created", price="price_tier_a")
    crash_at(step)
    with pytest.raises(SimulatedCrash):
        feed(evt)
    row = event_row(evt)
    assert (row.processing_status, row.attempts) == ("received", 1)  # the attempt is counted, its writes are not
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "C"
    assert Subscription.objects.get().status == "incomplete"
    assert processing.retry_due(now=row.next_attempt_at) == [row.pk]  # the sweep finds it
    row.refresh_from_db()
    assert (row.processing_status, row.attempts) == ("processed", 2)
    assert asked_tier(Tenant.objects.get(email=customer.email)) == "A"


def test_a_crash_while_provisioning_provisions_once_on_the_rerun(customer: Customer, crash_at: Any) -> None:
    evt = customer.checkout()
    crash_at("handled")
    with pytest.raises(SimulatedCrash):
        feed(evt)
    assert not Tenant.objects.filter(email=customer.email).exists()
    assert mail.outbox == []
    assert processing.event_process(event_id=event_row(evt).pk) == "processed"
    assert Tenant.objects.filter(email=customer.email).count() == 1
    assert len(mail.outbox) == 1


def test_after_the_attempt_limit_an_event_stays_failed(customer: Customer, settings: Any) -> None:
    settings.STRIPE_EVENT_MAX_ATTEMPTS = 3
    evt = customer.subscription("created")  # no checkout: it waits, and fails each time
    feed(evt)
    row = event_row(evt)
    for _ in range(4):
        processing.retry_due(now=timezone.now() + timedelta(days=1))
    row.refresh_from_db()
    assert (row.processing_status, row.attempts) == ("failed", 3)
    assert processing.retry_due(now=timezone.now() + timedelta(days=1)) == []
    feed(customer.checkout())  # the checkout's re-send does not pass the limit either
    assert event_row(evt).attempts == 3
    assert processing.event_process(event_id=row.pk, manual=True) == "processed"  # the admin's "process again"


def test_stuck_received_events_are_swept(customer: Customer, settings: Any) -> None:
    """A delivery whose message never reached a worker (broker down) is found by the sweep."""
    from billing.intake import event_store

    row, created = event_store(event=customer.checkout())
    assert created
    assert processing.retry_due() == []
    later = timezone.now() + timedelta(seconds=settings.STRIPE_EVENT_STUCK_SECONDS + 1)
    assert processing.retry_due(now=later) == [row.pk]
    assert BillingEvent.objects.get(pk=row.pk).processing_status == ProcessingStatus.PROCESSED
