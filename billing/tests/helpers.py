"""Driving events through the pipeline without HTTP: store, process, and drain what waits (as the sweep would)."""

from typing import Any

from billing.intake import event_store
from billing.models import BillingEvent, ProcessingStatus
from billing.processing import event_process
from moves.models import Move
from tenants.models import Tenant


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


def asked_tier(tenant: Tenant) -> str:
    """The tier billing last asked the tier-move service for (the move may still run, or have rolled back for want
    of tier pods in a test without them); the tenant's tier when no move was asked."""
    move = Move.objects.filter(tenant=tenant).order_by("-created_at").first()
    return move.to_tier if move is not None else tenant.tier
