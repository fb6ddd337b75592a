"""The same event delivered 20 times at once, to a threaded server on its own connections: stored once, applied once."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.core import mail

from billing import shapes
from billing.models import BillingEvent
from billing.tests.conftest import SECRET, URL, Customer
from moves.models import Move
from tenants.models import AuditLog, Tenant

pytestmark = pytest.mark.django_db(transaction=True)
DELIVERIES = 20


def deliver_at_once(base_url: str, evt: dict[str, Any]) -> list[int]:
    payload = shapes.body(evt)
    barrier = threading.Barrier(DELIVERIES)

    def send(_: int) -> int:
        header = shapes.signature_header(payload, SECRET)  # each retry is signed afresh
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            response = client.post(
                f"{base_url}{URL}",
                content=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": header},
            )
            return response.status_code

    with ThreadPoolExecutor(DELIVERIES) as pool:
        return list(pool.map(send, range(DELIVERIES)))


def test_twenty_concurrent_deliveries_are_processed_once(live_server: Any) -> None:
    customer = Customer()
    checkout = customer.checkout()
    assert deliver_at_once(live_server.url, checkout) == [200] * DELIVERIES
    row = BillingEvent.objects.get(stripe_event_id=checkout["id"])
    assert row.processing_status == "processed"
    assert BillingEvent.objects.count() == 1
    tenant = Tenant.objects.get(email=customer.email)
    assert AuditLog.objects.filter(tenant=tenant, action="tenant.created").count() == 1
    assert len(mail.outbox) == 1

    update = customer.subscription("created", price="price_tier_a")
    assert deliver_at_once(live_server.url, update) == [200] * DELIVERIES
    assert list(Move.objects.filter(tenant=tenant).values_list("to_tier", flat=True)) == ["A"]  # one move asked
    assert BillingEvent.objects.get(stripe_event_id=update["id"]).processing_status == "processed"
