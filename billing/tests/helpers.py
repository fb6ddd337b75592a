"""Driving events through the pipeline without HTTP: store, process, and drain what waits (as the sweep would)."""

from typing import Any

from billing.intake import event_store
from billing.models import BillingEvent, ProcessingStatus
from billing.processing import event_process


def feed(evt: dict[str, Any]) -> str:
    """Store and process one event now; its final status."""
    row, _ = event_store(event=evt)
    return event_process(event_id=row.pk)


def drain(rounds: int = 10) -> None:
    """Process every unfinished event again until nothing changes (the sweep, without its backoff)."""
    for _ in range(rounds):
        pending = list(
            BillingEvent.objects.filter(
                processing_status__in=[ProcessingStatus.RECEIVED, ProcessingStatus.FAILED]
            ).values_list("pk", flat=True)
        )
        if not pending:
            return
        before = BillingEvent.objects.filter(processing_status=ProcessingStatus.PROCESSED).count()
        for pk in pending:
            event_process(event_id=pk, manual=True)
        if BillingEvent.objects.filter(processing_status=ProcessingStatus.PROCESSED).count() == before:
            return
