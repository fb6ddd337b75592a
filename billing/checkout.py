"""checkout.session.completed: provision the tenant once (tenant, state, key, subscription row, welcome mail).

The subscription row carries the customer and subscription ids, so a second delivery, a replay by reconciliation or a
retry finds it and provisions nothing more. The row starts `incomplete` on the free tier; the subscription's own
events (which may arrive before or after this one) set its status, price and tier. Events that arrived before the
checkout and waited for its customer are sent again once it commits.
"""

from functools import partial

from django.conf import settings
from django.db import transaction

from billing.emails import send_welcome
from billing.errors import HandlerError
from billing.intake import enqueue
from billing.models import BillingEvent, Subscription, SubscriptionStatus
from billing.payloads import customer_of, data_object
from billing.selectors import waiting_for_customer
from billing.subscriptions import stripe_id
from billing.tier_moves import BILLING_ACTOR
from core.emails import normalize_email
from tenants.models import Tenant
from tenants.services import tenant_provision


def _resend_waiting(customer_id: str) -> None:
    enqueue(waiting_for_customer(customer_id))


def checkout_completed(event: BillingEvent) -> None:
    session = data_object(event.payload)
    if session.get("mode") != "subscription":
        return  # one-off payments provision nothing
    customer, subscription_id = customer_of(session), stripe_id(session.get("subscription"))
    email = (session.get("customer_details") or {}).get("email") or session.get("customer_email")
    if not customer or not subscription_id or not email:
        raise HandlerError("the checkout session has no customer, subscription or email")
    existing = Subscription.objects.filter(stripe_subscription_id=subscription_id).select_related("tenant").first()
    if existing is not None:
        event.tenant = existing.tenant
        return
    email = normalize_email(email)
    tenant = Tenant.objects.select_for_update().filter(email=email).first()
    if tenant is None:
        tenant = tenant_provision(email=email, tier=settings.STRIPE_FREE_TIER, actor=BILLING_ACTOR)
        transaction.on_commit(partial(send_welcome, tenant))
    Subscription.objects.create(
        tenant=tenant,
        tier=settings.STRIPE_FREE_TIER,
        status=SubscriptionStatus.INCOMPLETE,
        stripe_customer_id=customer,
        stripe_subscription_id=subscription_id,
    )
    event.tenant = tenant
    transaction.on_commit(partial(_resend_waiting, customer))
