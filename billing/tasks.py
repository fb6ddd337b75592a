"""Celery shells around the billing services (acks_late: a worker that dies mid-event leaves the message to be
delivered again, and processing is exactly-once whatever runs it twice)."""

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from billing import dunning, processing, subscriptions


@shared_task(name="billing.process_event", acks_late=True, reject_on_worker_lost=True)
def process_event(event_id: str, manual: bool = False) -> str:
    return processing.event_process(event_id=event_id, manual=manual)


@shared_task(name="billing.follow_tier", bind=True, acks_late=True, max_retries=60)
def follow_tier(self: Task, tenant_id: str) -> str:
    """Ask again for the tier the tenant's subscriptions want, once the move that was running has finished."""
    if subscriptions.tier_follow(tenant_id=tenant_id):
        return "asked"
    raise self.retry(countdown=settings.STRIPE_TIER_FOLLOW_SECONDS)


@shared_task(name="billing.retry_events", acks_late=True)
def retry_events() -> int:
    """Beat: failed events whose backoff has passed and received events nobody processed are sent again."""
    return len(processing.retry_due())


@shared_task(name="billing.apply_dunning", acks_late=True)
def apply_dunning() -> int:
    """Beat: the grace period's end (downgrade or suspend)."""
    return dunning.dunning_apply(now=timezone.now())
