"""Outbound calls to Stripe: stripe-python's client with an explicit API version and base address (tests point it
at a local server). Reads only today (events, subscriptions); a POST would pass an idempotency key in `options`."""

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from core.errors import PlatformError


class StripeNotConfigured(PlatformError):
    pass


def _number(value: object) -> int | float:
    if isinstance(value, Decimal):  # stripe-python parses JSON numbers with a fraction as Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def plain(obj: stripe.StripeObject) -> dict[str, Any]:
    """A StripeObject as the JSON Stripe sent (what a webhook body would hold)."""
    return dict(json.loads(json.dumps(obj.to_dict(), default=_number)))


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set: the Stripe API cannot be called")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=3,
    )


def events_since(since: datetime, *, until: datetime) -> Iterator[dict[str, Any]]:
    """Every event Stripe still holds created in [since, until), newest first, as plain dicts."""
    params: Any = {"created": {"gte": int(since.timestamp()), "lt": int(until.timestamp())}, "limit": 100}
    for event in stripe_client().v1.events.list(params).auto_paging_iter():
        yield plain(event)


def all_subscriptions() -> Iterator[dict[str, Any]]:
    """Every subscription of the account, whatever its status, as plain dicts."""
    params: Any = {"status": "all", "limit": 100}
    for sub in stripe_client().v1.subscriptions.list(params).auto_paging_iter():
        yield plain(sub)
