"""Billing fixtures: webhook secrets and price tiers, a signed-delivery helper, Stripe-shaped event builders."""

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from billing import processing, shapes

SECRET = "whsec_test_current_0123456789abcdef"
OLD_SECRET = "whsec_test_previous_0123456789abcdef"
PRICES = {"price_tier_a": "A", "price_tier_b": "B", "price_tier_c": "C"}
URL = "/billing/stripe/webhook/"


class SimulatedCrash(BaseException):
    """Raised from a step hook: like a process dying, no `except Exception` handler sees it."""


@pytest.fixture(autouse=True)
def stripe_settings(settings: Any) -> Any:
    settings.STRIPE_WEBHOOK_SECRETS = [SECRET]
    settings.STRIPE_PRICE_TIERS = dict(PRICES)
    settings.STRIPE_FREE_TIER = "C"
    settings.STRIPE_DUNNING_ACTION = "downgrade"
    settings.STRIPE_DUNNING_GRACE_HOURS = 72.0
    # No tier pods unless a test starts real ones (test_tier_moves): the moves billing asks for then roll back at
    # once, whatever other processes listen on the default local pod ports.
    settings.GATEWAY_TIER_PODS = {"A": [], "B": [], "C": []}
    settings.GATEWAY_TIER_DNS = {"A": "", "B": "", "C": ""}
    return settings


def deliver(
    client: Client, evt: dict[str, Any] | bytes, *, secret: str = SECRET, timestamp: int | None = None, **headers: str
) -> Any:
    payload = evt if isinstance(evt, bytes) else shapes.body(evt)
    header = shapes.signature_header(payload, secret, timestamp=timestamp)
    return client.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header, **headers)


_ids = itertools.count(1)


class Customer:
    """One Stripe customer's objects and events, with increasing `created` times unless told otherwise."""

    def __init__(self, n: int | None = None, *, start: int | None = None) -> None:
        self.n = next(_ids) if n is None else n
        self.customer = f"cus_T{self.n:06d}"
        self.sub = f"sub_T{self.n:06d}"
        self.email = f"customer{self.n}@example.com"
        self.clock = start or int(time.time()) - 86_400
        self.events = 0

    def _event(self, event_type: str, obj: dict[str, Any], created: int | None) -> dict[str, Any]:
        self.events += 1
        if created is None:
            self.clock += 10
            created = self.clock
        return shapes.event(event_type, obj, event_id=f"evt_T{self.n:06d}_{self.events:03d}", created=created)

    def checkout(self, created: int | None = None) -> dict[str, Any]:
        obj = shapes.checkout_session(
            session_id=f"cs_test_T{self.n:06d}",
            customer=self.customer,
            subscription=self.sub,
            email=self.email,
            created=self.clock,
        )
        return self._event("checkout.session.completed", obj, created)

    def subscription(
        self,
        kind: str,
        *,
        status: str = "active",
        price: str = "price_tier_b",
        cancel_at_period_end: bool = False,
        created: int | None = None,
    ) -> dict[str, Any]:
        obj = shapes.subscription(
            subscription_id=self.sub,
            customer=self.customer,
            status=status,
            price=price,
            period_start=self.clock,
            period_end=self.clock + 30 * 86_400,
            cancel_at_period_end=cancel_at_period_end,
        )
        return self._event(f"customer.subscription.{kind}", obj, created)

    def invoice(self, *, paid: bool, created: int | None = None) -> dict[str, Any]:
        obj = shapes.invoice(
            invoice_id=f"in_T{self.n:06d}_{self.events:03d}",
            customer=self.customer,
            subscription=self.sub,
            paid=paid,
            created=self.clock,
        )
        return self._event("invoice.paid" if paid else "invoice.payment_failed", obj, created)


@pytest.fixture
def customer() -> Customer:
    return Customer()


@pytest.fixture
def crash_at() -> Iterator[Callable[[str], None]]:
    """crash_at("handled") makes event processing raise SimulatedCrash once at that step."""
    armed: set[str] = set()

    def hook(step: str, event: object) -> None:
        if step in armed:
            armed.discard(step)
            raise SimulatedCrash(step)

    processing.STEP_HOOK = hook
    yield armed.add
    processing.STEP_HOOK = None
