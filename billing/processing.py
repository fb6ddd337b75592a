"""Processing one stored event, exactly once, whatever the deliveries, the workers and the crashes.

1. Claim (own transaction): lock the row; a finished event is left alone; otherwise count the attempt and set the
   time the sweep may try again, so an attempt that dies with its process is still counted and retried.
2. Apply (one transaction): lock the row again, re-check it is unfinished, run the handler and mark the row
   processed (or ignored). The handler's writes and the status commit together: a crash anywhere leaves neither, and
   two workers holding the same event serialise on the row lock, the second finding it finished.
3. A handler error rolls the handler back and records the failure with its backoff; after
   STRIPE_EVENT_MAX_ATTEMPTS attempts the sweep stops and the event stays failed in the admin.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.checkout import checkout_completed
from billing.dunning import invoice_paid, invoice_payment_failed
from billing.errors import HandlerError
from billing.intake import enqueue
from billing.models import BillingEvent, ProcessingStatus
from billing.selectors import due_events
from billing.subscriptions import subscription_changed

log = logging.getLogger(__name__)

Handler = Callable[[BillingEvent], None]
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
}
FINISHED = (ProcessingStatus.PROCESSED, ProcessingStatus.IGNORED)

# Tests set this to raise at a named step ("claimed", "handled"), as a process dying there would.
STEP_HOOK: Callable[[str, BillingEvent], None] | None = None


def _step(name: str, event: BillingEvent) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name, event)


def backoff(attempts: int) -> timedelta:
    """30 s after the first attempt, doubling, at most an hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def _key(event_id: uuid.UUID | str) -> dict[str, object]:
    """A row id, or the Stripe event id (the webhook enqueues by it)."""
    if isinstance(event_id, str) and event_id.startswith("evt_"):
        return {"stripe_event_id": event_id}
    return {"pk": event_id}


def _locked(event_id: uuid.UUID | str) -> BillingEvent:
    return BillingEvent.objects.select_for_update().get(**_key(event_id))


def _claim(event_id: uuid.UUID | str, *, manual: bool, now: datetime) -> BillingEvent | None:
    with transaction.atomic():
        event = _locked(event_id)
        if event.processing_status in FINISHED:
            return None
        if event.attempts >= settings.STRIPE_EVENT_MAX_ATTEMPTS and not manual:
            if event.processing_status != ProcessingStatus.FAILED:
                event.processing_status = ProcessingStatus.FAILED
                event.last_error = f"gave up after {event.attempts} attempts"
                event.save(update_fields=["processing_status", "last_error"])
            return None
        event.attempts += 1
        event.next_attempt_at = now + backoff(event.attempts)
        event.save(update_fields=["attempts", "next_attempt_at"])
        return event


def event_process(*, event_id: uuid.UUID | str, manual: bool = False) -> str:
    """Apply a stored event once; returns the status it ends in. `manual` (the admin's action) passes the limit."""
    now = timezone.now()
    claimed = _claim(event_id, manual=manual, now=now)
    if claimed is None:
        return BillingEvent.objects.values_list("processing_status", flat=True).get(**_key(event_id))
    _step("claimed", claimed)
    try:
        with transaction.atomic():
            event = _locked(event_id)
            if event.processing_status in FINISHED:
                return event.processing_status
            handler = HANDLERS.get(event.event_type)
            if handler is not None:
                handler(event)
            _step("handled", event)
            event.processing_status = ProcessingStatus.PROCESSED if handler else ProcessingStatus.IGNORED
            event.processed_at = timezone.now()
            event.last_error = None
            event.next_attempt_at = None
            event.save(update_fields=["processing_status", "processed_at", "last_error", "next_attempt_at", "tenant"])
            return event.processing_status
    except Exception as exc:  # any handler error: recorded on the row, retried by the sweep
        log.warning("billing: event %s failed: %s", event_id, exc, exc_info=not isinstance(exc, HandlerError))
        BillingEvent.objects.filter(**_key(event_id)).exclude(processing_status__in=FINISHED).update(
            processing_status=ProcessingStatus.FAILED,
            last_error=f"{type(exc).__name__}: {exc}"[:4000],
            failures=F("failures") + 1,
        )
        return ProcessingStatus.FAILED


def retry_due(*, now: datetime | None = None, limit: int = 500) -> list[uuid.UUID]:
    """Failed events whose backoff has passed and received events nobody took (lost message or crashed worker)."""
    now = now or timezone.now()
    ids = due_events(now=now, stuck_before=now - timedelta(seconds=settings.STRIPE_EVENT_STUCK_SECONDS), limit=limit)
    enqueue(ids)
    return ids
