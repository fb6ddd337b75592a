"""The tenant's email about a completed move (Django's email backend: the console locally)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from moves.models import Move

log = logging.getLogger("moves")

TIER_NAMES = {"A": "Premium (A)", "B": "Standard (B)", "C": "Free (C)"}


def tenant_moved(move: Move) -> None:
    """Best effort: the move is done whether or not the mail goes out (a failure is logged, never retried twice)."""
    new, old = TIER_NAMES.get(move.to_tier, move.to_tier), TIER_NAMES.get(move.from_tier, move.from_tier)
    try:
        send_mail(
            subject=f"Your Percolate workspace is now on the {new} tier",
            message=(
                f"Hello,\n\nyour Percolate workspace has moved from the {old} tier to the {new} tier. Your memory "
                f"and conversations moved with it; nothing is needed on your side.\n\n— Percolate\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[move.tenant.email],
        )
    except Exception:
        log.exception("tier move %s: could not send the email to the tenant", move.id)
