"""The overview's live feed: one snapshot per refresh interval shared by every open page, and nudges.

Each consumer polls `current()` every OVERVIEW_REFRESH_SECONDS; the snapshot is cached for that long, so the database
sees one set of overview queries per interval however many staff watch (per process on the local-memory cache,
cluster-wide on Redis). A nudge (an archival job changed) drops the cached snapshot and tells the consumers in the
channel layer's group to refresh now: with channels-redis that reaches every overview process at once; with the
in-memory layer of the embedded default only the process that nudged, so there the poll carries the change.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from overview.selectors import snapshot

GROUP = "overview"
CACHE_KEY = "overview:snapshot"
log = logging.getLogger(__name__)


def current() -> dict[str, Any]:
    data = cache.get(CACHE_KEY)
    if data is None:
        data = {**snapshot(), "generated_at": timezone.now().isoformat()}
        cache.set(CACHE_KEY, data, timeout=settings.OVERVIEW_REFRESH_SECONDS)
    return data


def nudge() -> None:
    """Something the overview shows changed: drop the cached snapshot and ask open pages to refresh."""
    cache.delete(CACHE_KEY)
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(GROUP, {"type": "overview.refresh"})
    except Exception:  # the overview is a view: never fail the job that changed
        log.warning("overview nudge failed", exc_info=True)
