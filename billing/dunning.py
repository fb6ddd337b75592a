"""invoice.paid / invoice.payment_failed and the grace period: past due -> grace -> downgrade or suspend -> back.

A failed payment starts the grace clock at the failure's Stripe time (kept while later failures come); the sweep
(`dunning_apply`, beat) downgrades the tenant to the free tier or suspends it (STRIPE_DUNNING_ACTION) once
STRIPE_DUNNING_GRACE_HOURS have passed; a paid invoice clears the clock and undoes what dunning did. Invoice events
older than the newest one applied to the subscription change nothing.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from billing.errors import WaitingForCheckout
from billing.models import BillingEvent, Subscription
from billing.payloads import customer_of, data_object
from billing.subscriptions import LIVE, locked_customer_tenant, stripe_id, sync_tenant_tier
from billing.tier_moves import BILLING_ACTOR
from tenants.models import Tenant, TenantStatus
from tenants.services import locked_tenant, tenant_reactivate, tenant_suspend


def _subscription_id(invoice: dict[str, Any]) -> str | None:
    details = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return stripe_id(details) or stripe_id(invoice.get("subscription"))


def _locked_subscription(event: BillingEvent) -> tuple[Tenant, Subscription] | None:
    invoice = data_object(event.payload)
    subscription_id = _subscription_id(invoice)
    if subscription_id is None:
        return None  # a one-off invoice: no subscription to keep in standing
    tenant = locked_customer_tenant(customer_of(invoice))
    event.tenant = tenant
    sub = Subscription.objects.select_for_update().filter(stripe_subscription_id=subscription_id).first()
    if sub is None:
        raise WaitingForCheckout(f"subscription {subscription_id} is not known yet")
    assert event.stripe_created is not None
    if sub.invoice_state_at is not None and event.stripe_created < sub.invoice_state_at:
        return None
    sub.invoice_state_at = event.stripe_created
    return tenant, sub


def invoice_payment_failed(event: BillingEvent) -> None:
    found = _locked_subscription(event)
    if found is None:
        return
    _, sub = found
    if sub.payment_failed_at is None:
        sub.payment_failed_at = event.stripe_created
    sub.save(update_fields=["invoice_state_at", "payment_failed_at", "updated_at"])


def invoice_paid(event: BillingEvent) -> None:
    found = _locked_subscription(event)
    if found is None:
        return
    tenant, sub = found
    was_dunned = sub.dunned_at is not None
    sub.payment_failed_at = None
    sub.dunned_at = None
    sub.save(update_fields=["invoice_state_at", "payment_failed_at", "dunned_at", "updated_at"])
    if was_dunned:
        if tenant.status == TenantStatus.SUSPENDED:
            tenant_reactivate(tenant_id=tenant.id, actor=BILLING_ACTOR)
        sync_tenant_tier(tenant, reason=f"invoice paid ({event.stripe_event_id})")


def dunning_apply(*, now: datetime, limit: int = 500) -> int:
    """Downgrade or suspend tenants whose payment has failed for longer than the grace period; returns how many."""
    cutoff = now - timedelta(hours=settings.STRIPE_DUNNING_GRACE_HOURS)
    due = Subscription.objects.filter(payment_failed_at__lte=cutoff, dunned_at__isnull=True, status__in=LIVE)
    done = 0
    for sub_id, tenant_id in due.values_list("id", "tenant_id")[:limit]:
        with transaction.atomic():
            tenant = locked_tenant(tenant_id)
            sub = Subscription.objects.select_for_update().get(pk=sub_id)
            if sub.dunned_at is not None or sub.payment_failed_at is None or sub.payment_failed_at > cutoff:
                continue  # paid meanwhile
            sub.dunned_at = now
            sub.save(update_fields=["dunned_at", "updated_at"])
            if settings.STRIPE_DUNNING_ACTION == "suspend":
                if tenant.status == TenantStatus.ACTIVE:
                    tenant_suspend(tenant_id=tenant.id, actor=BILLING_ACTOR, reason="payment overdue past grace")
            else:
                sync_tenant_tier(tenant, reason="payment overdue past grace")
            done += 1
    return done
