"""Reads for billing."""

from django.db.models import Count

from billing.models import BillingEvent


def event_counts() -> list[tuple[str, int]]:
    """(processing status, count) over all stored Stripe events: the source of `percolate_billing_events_total`."""
    rows = BillingEvent.objects.values_list("processing_status").annotate(n=Count("id")).order_by()
    return [(status, n) for status, n in rows]
