"""The one place billing moves a tenant between tiers: issue #13's tier-move service, `moves.services.tenant_move`.

The move is asked for inside the event's transaction (the Move row commits with the subscription change, or neither
does); the move itself runs in its own task. While another move of the tenant runs (or an archive or restore job),
the service refuses a second one: billing then leaves the event processed (the subscription row already says which
tier is wanted) and a `billing.follow_tier` task asks again once that move has finished.
"""

import logging
import uuid
from functools import partial

from django.conf import settings
from django.db import transaction

from core.audit import Actor
from core.enqueue import task_named
from core.errors import Conflict
from moves.selectors import active_move
from moves.services import tenant_move
from tenants.models import Tenant, TenantStatus

log = logging.getLogger(__name__)
BILLING_ACTOR = Actor.system("service:billing")


def _follow_later(tenant_id: uuid.UUID) -> None:
    follow_tier = task_named("billing.follow_tier")
    try:
        follow_tier.apply_async((str(tenant_id),), countdown=settings.STRIPE_TIER_FOLLOW_SECONDS)
    except Exception:  # the broker is down: stripe_sync_subscriptions repairs the tier
        log.exception("billing: could not schedule the tier follow-up of tenant %s", tenant_id)


def tier_in_flight(tenant: Tenant) -> str:
    """The tier the tenant is on, or moving to."""
    active = active_move(tenant.id)
    return active.to_tier if active is not None else tenant.tier


def move_tenant_to_tier(*, tenant: Tenant, tier: str, reason: str) -> bool:
    """Ask for a move of `tenant` to `tier` unless it is there or on its way; False if it must be asked again later."""
    if tenant.status == TenantStatus.DELETED:
        return True
    active = active_move(tenant.id)
    if active is not None and active.to_tier == tier:
        return True
    if active is None:
        if tenant.tier == tier:
            return True
        try:
            tenant_move(tenant_id=tenant.id, tier=tier, actor=BILLING_ACTOR, reason=reason)
            return True
        except Conflict as exc:  # an archive or restore job runs
            log.info("billing: tenant %s cannot move to %s now: %s", tenant.id, tier, exc)
    transaction.on_commit(partial(_follow_later, tenant.id))
    return False
