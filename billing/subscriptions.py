"""customer.subscription.created/updated/deleted: the row equals Stripe's object, the tenant sits on its tier.

Order: an event older (by Stripe's `created`) than the one last applied to the row changes nothing, and `canceled`
is final, as it is in Stripe. Every change of one tenant's billing runs under its tenant row lock, so two workers
applying events of one customer serialise (docs/decisions.md, "Stripe events: order").
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from billing.errors import HandlerError, WaitingForCheckout
from billing.models import BillingEvent, Subscription, SubscriptionStatus
from billing.payloads import customer_of, data_object
from billing.selectors import tenant_id_for_customer
from billing.tier_moves import move_tenant_to_tier
from tenants.models import Tenant
from tenants.services import locked_tenant

# Statuses that keep the paid tier (past_due until the dunning grace runs out).
LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)


def stripe_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) and not isinstance(value, bool) else None


def _first_item(obj: dict[str, Any]) -> dict[str, Any]:
    items = (obj.get("items") or {}).get("data") or [{}]
    return items[0] if isinstance(items[0], dict) else {}


def tier_for_price(price_id: str | None) -> str:
    tier = settings.STRIPE_PRICE_TIERS.get(price_id or "")
    if tier is None:
        raise HandlerError(f"price {price_id} has no tier in STRIPE_PRICE_TIERS")
    return str(tier)


def locked_customer_tenant(customer_id: str | None) -> Tenant:
    """The customer's tenant, locked; WaitingForCheckout while its checkout has not been processed."""
    if not customer_id:
        raise HandlerError("the object names no customer")
    tenant_id = tenant_id_for_customer(customer_id)
    if tenant_id is None:
        raise WaitingForCheckout(f"no tenant for customer {customer_id} yet (its checkout is not processed)")
    return locked_tenant(tenant_id)


def desired_tier(tenant: Tenant) -> str:
    """The newest live subscription's tier; the free tier without one, or once dunning downgraded it."""
    live = Subscription.objects.filter(tenant=tenant, status__in=LIVE).order_by("-created_at", "-id").first()
    if live is None or (live.dunned_at is not None and settings.STRIPE_DUNNING_ACTION == "downgrade"):
        return str(settings.STRIPE_FREE_TIER)
    return live.tier


def sync_tenant_tier(tenant: Tenant, *, reason: str) -> bool:
    """Ask for the move to the tier the subscriptions want; False while another move must finish first."""
    return move_tenant_to_tier(tenant=tenant, tier=desired_tier(tenant), reason=reason)


def tier_follow(*, tenant_id: uuid.UUID | str) -> bool:
    """The follow-up after a refused move: True once the wanted tier is reached or asked for."""
    with transaction.atomic():
        tenant = locked_tenant(tenant_id)
        return sync_tenant_tier(tenant, reason="billing: the tier the subscription wants, after another move")


MIRRORED = ("status", "stripe_price_id", "tier", "current_period_start", "current_period_end", "cancel_at_period_end")


def copy_fields(sub: Subscription, obj: dict[str, Any]) -> None:
    """Stripe's subscription object onto the row's mirrored fields (not saved)."""
    status = obj.get("status")
    if status not in SubscriptionStatus.values:
        raise HandlerError(f"unknown subscription status {status!r}")
    item = _first_item(obj)
    price = stripe_id(item.get("price"))
    sub.status = status
    sub.stripe_price_id = price
    sub.tier = tier_for_price(price)
    sub.current_period_start = _time(item.get("current_period_start", obj.get("current_period_start")))
    sub.current_period_end = _time(item.get("current_period_end", obj.get("current_period_end")))
    sub.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))


def subscription_apply(*, sub: Subscription, obj: dict[str, Any], at: datetime) -> bool:
    """Copy Stripe's subscription object onto the row unless the row holds newer state; True if applied."""
    if sub.stripe_state_at is not None and (at < sub.stripe_state_at or sub.status == SubscriptionStatus.CANCELED):
        return False
    copy_fields(sub, obj)
    sub.stripe_state_at = at
    sub.save()
    return True


def subscription_changed(event: BillingEvent) -> None:
    obj = data_object(event.payload)
    customer = customer_of(obj)
    tenant = locked_customer_tenant(customer)
    event.tenant = tenant
    sub = Subscription.objects.select_for_update().filter(stripe_subscription_id=obj["id"]).first()
    if sub is None:
        sub = Subscription(tenant=tenant, stripe_subscription_id=obj["id"], stripe_customer_id=customer)
    assert event.stripe_created is not None
    if subscription_apply(sub=sub, obj=obj, at=event.stripe_created):
        sync_tenant_tier(tenant, reason=f"Stripe {event.event_type} {event.stripe_event_id}")
