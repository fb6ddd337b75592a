"""The worker's billing metrics count real rows: received, failed attempts, per status, and the processing lag."""

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from billing.intake import event_store
from billing.models import BillingEvent
from billing.tests.conftest import Customer
from billing.tests.helpers import drain, feed
from percolate_platform.worker_metrics import build_registry

pytestmark = pytest.mark.django_db


def samples(registry: CollectorRegistry) -> dict[str, float]:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{label}}}" if label else s.name] = s.value
    return out


def test_counts_and_lag_follow_the_pipeline() -> None:
    registry = build_registry()
    customer = Customer()
    waiting = customer.subscription("created")
    feed(waiting)  # fails: no checkout yet
    unknown = Customer().checkout()
    unknown["type"] = "customer.tax_id.created"
    feed(unknown)
    row, _ = event_store(event=customer.checkout())  # received, not processed yet
    BillingEvent.objects.filter(stripe_event_id=waiting["id"]).update(created_at=row.created_at - timedelta(minutes=7))
    got = samples(registry)
    assert got["percolate_billing_events_received_total"] == 3
    assert got["percolate_billing_event_failures_total"] == 1
    assert got["percolate_billing_events_total{status=failed}"] == 1
    assert got["percolate_billing_events_total{status=ignored}"] == 1
    assert got["percolate_billing_events_total{status=received}"] == 1
    assert 7 * 60 <= got["percolate_billing_event_lag_seconds"] < 9 * 60
    feed(customer.checkout())
    drain()
    got = samples(registry)
    assert got["percolate_billing_event_lag_seconds"] == 0
    assert got["percolate_billing_event_failures_total"] == 1  # a counter: the old failure stays counted
    assert got["percolate_billing_events_total{status=processed}"] == 3
