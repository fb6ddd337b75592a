"""Dunning: a failed payment -> the grace period -> downgrade to the free tier (or suspension) -> back when paid."""

from datetime import timedelta
from typing import Any

import pytest

from billing.dunning import dunning_apply
from billing.models import Subscription
from billing.subscriptions import desired_tier
from billing.tests.conftest import Customer
from billing.tests.helpers import feed
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
GRACE = timedelta(hours=72)


def paying_customer() -> tuple[Customer, Tenant]:
    customer = Customer()
    feed(customer.checkout())
    feed(customer.subscription("created", price="price_tier_b"))
    return customer, Tenant.objects.get(email=customer.email)


def fail_payment(customer: Customer) -> Subscription:
    assert feed(customer.invoice(paid=False)) == "processed"
    assert feed(customer.subscription("updated", price="price_tier_b", status="past_due")) == "processed"
    sub = Subscription.objects.get(stripe_subscription_id=customer.sub)
    assert sub.payment_failed_at is not None
    return sub


def test_grace_then_downgrade_then_back_when_paid() -> None:
    customer, tenant = paying_customer()
    sub = fail_payment(customer)
    failed_at = sub.payment_failed_at
    assert failed_at is not None
    assert dunning_apply(now=failed_at + GRACE - timedelta(minutes=1)) == 0
    tenant.refresh_from_db()
    assert desired_tier(tenant) == "B"  # still in grace

    feed(customer.invoice(paid=False))  # another failed retry does not restart the clock
    sub.refresh_from_db()
    assert sub.payment_failed_at == failed_at

    assert dunning_apply(now=failed_at + GRACE + timedelta(seconds=1)) == 1
    assert dunning_apply(now=failed_at + GRACE + timedelta(hours=1)) == 0  # once
    tenant.refresh_from_db()
    sub.refresh_from_db()
    assert (desired_tier(tenant), tenant.status) == ("C", "active")
    assert sub.dunned_at is not None and sub.tier == "B"

    feed(customer.invoice(paid=True))
    feed(customer.subscription("updated", price="price_tier_b", status="active"))
    tenant.refresh_from_db()
    sub.refresh_from_db()
    assert (desired_tier(tenant), sub.payment_failed_at, sub.dunned_at, sub.status) == ("B", None, None, "active")


def test_grace_then_suspension_then_reactivated_when_paid(settings: Any) -> None:
    settings.STRIPE_DUNNING_ACTION = "suspend"
    customer, tenant = paying_customer()
    failed_at = fail_payment(customer).payment_failed_at
    assert failed_at is not None
    assert dunning_apply(now=failed_at + GRACE + timedelta(seconds=1)) == 1
    tenant.refresh_from_db()
    assert (desired_tier(tenant), tenant.status) == ("B", "suspended")
    feed(customer.invoice(paid=True))
    tenant.refresh_from_db()
    assert (desired_tier(tenant), tenant.status) == ("B", "active")


def test_paid_within_grace_changes_nothing() -> None:
    customer, tenant = paying_customer()
    failed_at = fail_payment(customer).payment_failed_at
    assert failed_at is not None
    feed(customer.invoice(paid=True))
    assert dunning_apply(now=failed_at + GRACE * 10) == 0
    tenant.refresh_from_db()
    assert (desired_tier(tenant), tenant.status) == ("B", "active")


def test_a_canceled_subscription_is_not_dunned() -> None:
    customer, tenant = paying_customer()
    failed_at = fail_payment(customer).payment_failed_at
    assert failed_at is not None
    feed(customer.subscription("deleted", price="price_tier_b", status="canceled"))
    assert dunning_apply(now=failed_at + GRACE * 2) == 0
    tenant.refresh_from_db()
    assert (desired_tier(tenant), tenant.status) == ("C", "active")


def test_a_late_failure_after_a_newer_payment_changes_nothing() -> None:
    customer, _ = paying_customer()
    failure = customer.invoice(paid=False)
    feed(customer.invoice(paid=True))
    feed(failure)  # arrives last, but Stripe created it before the payment
    sub = Subscription.objects.get(stripe_subscription_id=customer.sub)
    assert sub.payment_failed_at is None
