"""Reads for billing."""

import uuid
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q, Sum

from billing.models import BillingEvent, ProcessingStatus, Subscription

PENDING = (ProcessingStatus.RECEIVED, ProcessingStatus.FAILED)


def event_counts() -> list[tuple[str, int]]:
    """(processing status, count) over all stored Stripe events: the source of `percolate_billing_events_total`."""
    rows = BillingEvent.objects.values_list("processing_status").annotate(n=Count("id")).order_by()
    return [(status, n) for status, n in rows]


def event_totals() -> tuple[int, int]:
    """(events ever received, failed processing attempts ever): both only grow, as counters must."""
    totals = BillingEvent.objects.aggregate(received=Count("id"), failures=Sum("failures"))
    return totals["received"] or 0, totals["failures"] or 0


def oldest_pending_received_at() -> datetime | None:
    """When the oldest event still waiting to be applied (received or failed, below the attempt limit) arrived."""
    pending = BillingEvent.objects.filter(
        processing_status__in=PENDING, attempts__lt=settings.STRIPE_EVENT_MAX_ATTEMPTS
    )
    return pending.aggregate(oldest=Min("created_at"))["oldest"]


def due_events(*, now: datetime, stuck_before: datetime, limit: int) -> list[uuid.UUID]:
    """Events the sweep should send again: backoff passed, or received and never claimed since `stuck_before`."""
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lte=stuck_before)
    rows = BillingEvent.objects.filter(
        due, processing_status__in=PENDING, attempts__lt=settings.STRIPE_EVENT_MAX_ATTEMPTS
    )
    return list(rows.order_by("next_attempt_at").values_list("id", flat=True)[:limit])


def waiting_for_customer(customer_id: str) -> list[uuid.UUID]:
    """Unfinished events about a customer (they may have been waiting for its checkout)."""
    rows = BillingEvent.objects.filter(stripe_customer_id=customer_id, processing_status__in=PENDING)
    return list(rows.values_list("id", flat=True)[:1000])


def tenant_id_for_customer(customer_id: str) -> uuid.UUID | None:
    return Subscription.objects.filter(stripe_customer_id=customer_id).values_list("tenant_id", flat=True).first()


def stored_event_ids(stripe_ids: list[str]) -> set[str]:
    rows = BillingEvent.objects.filter(stripe_event_id__in=stripe_ids).values_list("stripe_event_id", flat=True)
    return {str(pk) for pk in rows}
