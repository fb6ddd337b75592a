"""Stripe events built from Stripe's own example objects (billing/stripe_shapes), signed as Stripe signs them.

For the tests, the benchmark and `manage.py stripe_send_test_event`: only ids, times, statuses and prices change.
"""

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import stripe

SHAPES = Path(__file__).resolve().parent / "stripe_shapes" / "fixtures3.json"


@cache
def _resources() -> dict[str, Any]:
    return dict(json.loads(SHAPES.read_text())["resources"])


def resource(name: str) -> dict[str, Any]:
    return copy.deepcopy(_resources()[name])


def event(event_type: str, obj: dict[str, Any], *, event_id: str, created: int) -> dict[str, Any]:
    evt = resource("event")
    evt.update(id=event_id, type=event_type, created=created, api_version=stripe.api_version)
    evt["data"] = {"object": obj}
    if event_type.endswith(".updated"):
        evt["data"]["previous_attributes"] = {}
    return evt


def checkout_session(*, session_id: str, customer: str, subscription: str, email: str, created: int) -> dict[str, Any]:
    obj = resource("checkout.session")
    obj.update(
        id=session_id,
        customer=customer,
        subscription=subscription,
        mode="subscription",
        status="complete",
        payment_status="paid",
        created=created,
        payment_intent=None,
        url=None,
    )
    obj["customer_details"]["email"] = email
    return obj


def subscription(
    *,
    subscription_id: str,
    customer: str,
    status: str,
    price: str,
    period_start: int,
    period_end: int,
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    obj = resource("subscription")
    obj.update(
        id=subscription_id,
        customer=customer,
        status=status,
        cancel_at_period_end=cancel_at_period_end,
        created=period_start,
        start_date=period_start,
        billing_cycle_anchor=period_start,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_start=None,
        trial_end=None,
        pending_update=None,
    )
    item = obj["items"]["data"][0]
    item["price"]["id"] = price
    item["plan"]["id"] = price
    item.update(subscription=subscription_id, current_period_start=period_start, current_period_end=period_end)
    obj["items"]["url"] = f"/v1/subscription_items?subscription={subscription_id}"
    return obj


def invoice(*, invoice_id: str, customer: str, subscription: str, paid: bool, created: int) -> dict[str, Any]:
    obj = resource("invoice")
    obj.update(
        id=invoice_id,
        customer=customer,
        created=created,
        status="paid" if paid else "open",
        billing_reason="subscription_cycle",
        amount_paid=2000 if paid else 0,
        amount_due=2000,
        amount_remaining=0 if paid else 2000,
        attempted=True,
        attempt_count=1,
    )
    obj["parent"] = {
        "quote_details": None,
        "subscription_details": {"metadata": {}, "subscription": subscription},
        "type": "subscription_details",
    }
    return obj


def body(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt, separators=(",", ":")).encode()


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe (and the Stripe CLI) would send, computed by stripe-python."""
    return str(
        stripe.WebhookSignature.generate_signature_header(
            payload.decode(), secret, timestamp=int(time.time()) if timestamp is None else timestamp
        )
    )
