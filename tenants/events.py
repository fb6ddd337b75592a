"""Change notifications for the gateway's caches, published on Redis after the transaction commits.

The gateway keeps tenant routes and device keys in memory; a suspended tenant, a tier move, a state change or a
revoked device must reach every gateway at once, not when a TTL runs out.
"""

import logging

import redis
from django.conf import settings
from django.db import transaction

CHANNEL = "percolate:invalidate"
log = logging.getLogger(__name__)
_client: redis.Redis | None = None


def _redis() -> redis.Redis | None:
    global _client
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def _publish(message: str) -> None:
    client = _redis()
    if client is None:
        return
    try:
        client.publish(CHANNEL, message)
    except redis.RedisError:
        # The gateway's TTL bounds how stale it can be; a lost notification must not fail the change itself.
        log.warning("could not publish cache invalidation %s", message, exc_info=True)


def tenant_changed(tenant_id: object) -> None:
    transaction.on_commit(lambda: _publish(f"tenant:{tenant_id}"))


def device_changed(device_id: object) -> None:
    transaction.on_commit(lambda: _publish(f"device:{device_id}"))
