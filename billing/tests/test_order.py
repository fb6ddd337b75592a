"""Out of order: every permutation of a subscription's events (checkout, created/updated/deleted, invoices) ends in
Stripe's final state; events that wait for their checkout are drained as the sweep would."""

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from billing.models import Subscription
from billing.subscriptions import desired_tier
from billing.tests.conftest import Customer
from billing.tests.helpers import drain, feed
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def replay(build: Callable[[Customer], list[dict[str, Any]]], order: tuple[int, ...]) -> tuple[Customer, Subscription]:
    customer = Customer()
    events = build(customer)  # in Stripe's order (increasing `created`)
    for i in order:
        feed(events[i])
    drain()
    return customer, Subscription.objects.get(stripe_subscription_id=customer.sub)


def lifecycle(c: Customer) -> list[dict[str, Any]]:
    return [
        c.checkout(),
        c.subscription("created", price="price_tier_b"),
        c.subscription("updated", price="price_tier_a"),
        c.subscription("updated", price="price_tier_a", cancel_at_period_end=True),
        c.subscription("deleted", price="price_tier_a", status="canceled", cancel_at_period_end=True),
    ]


def test_lifecycle_in_any_order_ends_canceled_on_the_free_tier() -> None:
    for order in itertools.permutations(range(5)):
        check_lifecycle(*replay(lifecycle, order))


def check_lifecycle(customer: Customer, sub: Subscription) -> None:
    assert (sub.status, sub.tier, sub.stripe_price_id, sub.cancel_at_period_end) == (
        "canceled",
        "A",
        "price_tier_a",
        True,
    )
    assert desired_tier(Tenant.objects.get(email=customer.email)) == "C"


def dunning_and_upgrade(c: Customer) -> list[dict[str, Any]]:
    return [
        c.checkout(),
        c.subscription("created", price="price_tier_b"),
        c.invoice(paid=False),
        c.invoice(paid=True),
        c.subscription("updated", price="price_tier_a", status="active"),
    ]


def test_failed_payment_paid_then_upgrade_in_any_order() -> None:
    for order in itertools.permutations(range(5)):
        customer, sub = replay(dunning_and_upgrade, order)
        assert (sub.status, sub.tier, sub.payment_failed_at, sub.dunned_at) == ("active", "A", None, None)
        assert desired_tier(Tenant.objects.get(email=customer.email)) == "A"


def unpaid(c: Customer) -> list[dict[str, Any]]:
    return [
        c.checkout(),
        c.subscription("created", price="price_tier_b"),
        c.invoice(paid=True),
        c.invoice(paid=False),
        c.subscription("updated", price="price_tier_b", status="past_due"),
    ]


def test_last_payment_failed_in_any_order_is_past_due_in_grace() -> None:
    for order in itertools.permutations(range(5)):
        customer, sub = replay(unpaid, order)
        assert (sub.status, sub.tier, sub.dunned_at) == ("past_due", "B", None)
        assert sub.payment_failed_at is not None and sub.payment_failed_at == sub.invoice_state_at  # the last one
        assert desired_tier(Tenant.objects.get(email=customer.email)) == "B"  # the grace period keeps the paid tier
