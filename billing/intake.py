"""Store, then process: a verified event is written once by its Stripe id and handed to the worker.

The insert is `INSERT … ON CONFLICT (stripe_event_id) DO NOTHING`: concurrent deliveries of one event race on the
unique index, one row wins, none fails. Every delivery enqueues the event again: a duplicate of a failed event is
processed again, never skipped as seen; processing itself is exactly-once (billing.processing) and leaves a finished
event alone, so an extra message costs a lookup. A broker that is down loses nothing: the row is stored
and the sweep finds it.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connections, transaction
from django.db.models import Field

from billing.models import BillingEvent, ProcessingStatus
from billing.payloads import amount_of, customer_of, event_time
from core.enqueue import task_named

log = logging.getLogger(__name__)
FINISHED = (ProcessingStatus.PROCESSED, ProcessingStatus.IGNORED)


_COLUMNS = (
    "id",
    "stripe_event_id",
    "event_type",
    "payload",
    "stripe_created",
    "stripe_customer_id",
    "amount_cents",
    "currency",
    "processing_status",
    "attempts",
)
# One statement, one round trip on the answer's path (the ORM's bulk_create(ignore_conflicts=True) wraps the same
# INSERT in a transaction of its own: three). created_at and failures take their database defaults.
_TABLE, _NAMES, _PLACES = BillingEvent._meta.db_table, ", ".join(_COLUMNS), ", ".join(["%s"] * len(_COLUMNS))
_INSERT = f"INSERT INTO {_TABLE} ({_NAMES}) VALUES ({_PLACES}) ON CONFLICT (stripe_event_id) DO NOTHING"  # noqa: S608


def _insert(event: dict[str, Any]) -> BillingEvent:
    obj = event["data"]["object"]
    amount, currency = amount_of(event["type"], obj)
    row = BillingEvent(
        stripe_event_id=event["id"],
        event_type=event["type"],
        payload=event,
        stripe_created=event_time(event),
        stripe_customer_id=customer_of(obj),
        amount_cents=amount,
        currency=currency or "USD",
    )
    conn = connections[BillingEvent.objects.db]
    fields = [BillingEvent._meta.get_field(name) for name in _COLUMNS]
    values = [f.get_db_prep_save(getattr(row, f.name), conn) for f in fields if isinstance(f, Field)]
    with conn.cursor() as cursor:
        cursor.execute(_INSERT, values)
    return row


def event_store(*, event: dict[str, Any]) -> tuple[BillingEvent, bool]:
    """(the stored row, whether this call inserted it) for a parsed, verified event."""
    row = _insert(event)
    stored = BillingEvent.objects.only("id", "processing_status").get(stripe_event_id=event["id"])
    return stored, stored.pk == row.pk


def enqueue(event_ids: Iterable[uuid.UUID | str], *, manual: bool = False) -> int:
    """Send each event (row id or Stripe event id) to the worker once the current transaction commits; a broker
    error is logged, not raised."""
    process_event = task_named("billing.process_event")
    ids = [str(pk) for pk in event_ids]

    def send() -> None:
        for pk in ids:
            try:
                process_event.delay(pk, manual=manual)
            except Exception:  # the broker is down: the row stays received/failed and the sweep sends it later
                log.exception("billing: could not enqueue event %s; the sweep will retry it", pk)

    transaction.on_commit(send)
    return len(ids)


def event_receive(*, event: dict[str, Any]) -> None:
    """Store the event (once) and enqueue its processing by Stripe id, one query on the answer's path: whether this
    delivery inserted the row or found it, finished or not, is the worker's first lookup (a finished event is left
    alone there), so a duplicate costs a message, not a second query here."""
    _insert(event)
    enqueue([event["id"]])
