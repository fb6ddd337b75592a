"""Store, then process: a verified event is written once by its Stripe id and handed to the worker.

The insert is `INSERT … ON CONFLICT (stripe_event_id) DO NOTHING`: concurrent deliveries of one event race on the
unique index, one row wins, none fails. Whatever the row's state, a delivery of an event not yet finished enqueues
it again: a duplicate of a failed event is processed again, never skipped as seen; processing itself is exactly-once
(billing.processing), so an extra message costs a lookup. A broker that is down loses nothing: the row is stored
and the sweep finds it.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from billing.models import BillingEvent, ProcessingStatus
from billing.payloads import amount_of, customer_of, event_time

log = logging.getLogger(__name__)
FINISHED = (ProcessingStatus.PROCESSED, ProcessingStatus.IGNORED)


def event_store(*, event: dict[str, Any]) -> tuple[BillingEvent, bool]:
    """(the stored row, whether this call inserted it) for a parsed, verified event."""
    obj = event["data"]["object"]
    amount, currency = amount_of(event["type"], obj)
    row = BillingEvent(
        stripe_event_id=event["id"],
        event_type=event["type"],
        payload=event,
        stripe_created=event_time(event),
        stripe_customer_id=customer_of(obj),
        amount_cents=amount,
        **({"currency": currency} if currency else {}),
    )
    BillingEvent.objects.bulk_create([row], ignore_conflicts=True)
    stored = BillingEvent.objects.only("id", "processing_status").get(stripe_event_id=event["id"])
    return stored, stored.pk == row.pk


def enqueue(event_ids: Iterable[uuid.UUID | str], *, manual: bool = False) -> int:
    """Send each event to the worker once the current transaction commits; a broker error is logged, not raised."""
    from billing.tasks import process_event

    ids = [str(pk) for pk in event_ids]

    def send() -> None:
        for pk in ids:
            try:
                process_event.delay(pk, manual=manual)
            except Exception:  # the broker is down: the row stays received/failed and the sweep sends it later
                log.exception("billing: could not enqueue event %s; the sweep will retry it", pk)

    transaction.on_commit(send)
    return len(ids)


def event_receive(*, event: dict[str, Any]) -> BillingEvent:
    """Store the event and, unless it is finished already, enqueue its processing."""
    row, _ = event_store(event=event)
    if row.processing_status not in FINISHED:
        enqueue([row.pk])
    return row
