"""Reconciliation for outages longer than Stripe's retry window, and a full subscription sync.

`reconcile`: list Stripe's events in a window and feed the ones never stored through the same pipeline as the
webhook (store once, then the worker). By default the window starts where the last finished run ended, minus a small
overlap; the first run walks all 30 days Stripe keeps. (Starting at the newest event processed would miss a gap as
soon as one live delivery landed after it: the watermark of finished runs cannot.)

`sync_subscriptions`: compare every subscription Stripe lists with its row and repair the differences, with the
object just fetched as the newest state (it is newer than any event).
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.errors import HandlerError, WaitingForCheckout
from billing.intake import event_receive
from billing.models import StripeReconciliation, Subscription
from billing.payloads import NotAnEvent, customer_of, parse_event
from billing.selectors import stored_event_ids
from billing.stripe_api import all_subscriptions, events_since
from billing.subscriptions import MIRRORED, copy_fields, locked_customer_tenant, sync_tenant_tier

OVERLAP = timedelta(minutes=10)
STRIPE_RETENTION = timedelta(days=30)


def default_since(now: datetime) -> datetime:
    last_run = StripeReconciliation.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    return max(last_run.until - OVERLAP, now - STRIPE_RETENTION) if last_run else now - STRIPE_RETENTION


@dataclass
class ReconcileResult:
    since: datetime
    until: datetime
    listed: int = 0
    fed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _pages(events: Iterator[dict[str, Any]], size: int = 100) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for event in events:
        page.append(event)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def reconcile(*, since: datetime | None = None, progress: Callable[[int], None] | None = None) -> ReconcileResult:
    now = timezone.now()
    run = StripeReconciliation.objects.create(since=since or default_since(now), until=now)
    result = ReconcileResult(since=run.since, until=run.until)
    missing: list[dict[str, Any]] = []
    for page in _pages(events_since(run.since, until=run.until)):
        known = stored_event_ids([str(e.get("id")) for e in page])
        missing += [e for e in page if e.get("id") not in known]
        result.listed += len(page)
        if progress:
            progress(len(page))
    for raw in reversed(missing):  # oldest first, as Stripe created them
        try:
            event = parse_event_dict(raw)
        except NotAnEvent as exc:
            result.refused.append(f"{raw.get('id')}: {exc}")
            continue
        with transaction.atomic():
            event_receive(event=event)
        result.fed.append(event["id"])
    run.listed, run.fed, run.finished_at = result.listed, len(result.fed), timezone.now()
    run.save(update_fields=["listed", "fed", "finished_at"])
    return result


def parse_event_dict(raw: dict[str, Any]) -> dict[str, Any]:
    """The same checks as a webhook body (an API answer goes into JSONB as well)."""
    return parse_event(json.dumps(raw))


@dataclass
class SyncResult:
    checked: int = 0
    repaired: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # at Stripe, but no tenant for the customer yet
    failed: list[str] = field(default_factory=list)


def sync_subscriptions(*, progress: Callable[[int], None] | None = None) -> SyncResult:
    result = SyncResult()
    for obj in all_subscriptions():
        result.checked += 1
        try:
            with transaction.atomic():
                if _sync_one(obj):
                    result.repaired.append(obj["id"])
        except WaitingForCheckout as exc:
            result.unknown.append(f"{obj.get('id')}: {exc}")
        except HandlerError as exc:
            result.failed.append(f"{obj.get('id')}: {exc}")
        if progress:
            progress(1)
    return result


def _sync_one(obj: dict[str, Any]) -> bool:
    customer = customer_of(obj)
    tenant = locked_customer_tenant(customer)
    sub = Subscription.objects.select_for_update().filter(stripe_subscription_id=obj["id"]).first()
    if sub is None:
        sub = Subscription(tenant=tenant, stripe_subscription_id=obj["id"], stripe_customer_id=customer)
    before = [getattr(sub, name) for name in MIRRORED] if sub.pk else None
    copy_fields(sub, obj)
    if before == [getattr(sub, name) for name in MIRRORED]:
        return False
    sub.stripe_state_at = timezone.now()  # what Stripe answers now is newer than any event applied so far
    sub.save()
    sync_tenant_tier(tenant, reason=f"stripe_sync_subscriptions repaired {obj['id']}")
    return True
