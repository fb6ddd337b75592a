"""Billing metrics for the worker's /metrics (read from the database at scrape time, like the others there)."""

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from billing.selectors import event_totals, oldest_pending_received_at


def billing_metrics() -> Iterator[Metric]:
    received, failures = event_totals()
    yield CounterMetricFamily("percolate_billing_events_received", "Stripe events stored (each once)", value=received)
    yield CounterMetricFamily(
        "percolate_billing_event_failures", "Failed processing attempts of Stripe events", value=failures
    )
    oldest = oldest_pending_received_at()
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "percolate_billing_event_lag_seconds",
        "Age of the oldest Stripe event received and not yet processed (0 when none waits)",
        value=max(lag, 0.0),
    )
