"""The gateway side of cache invalidation: listen on Redis pub/sub and drop changed tenants and devices at once.

A gateway that loses the subscription clears its caches when it gets it back (it may have missed messages); while
disconnected, the TTL bounds how stale an entry can be.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.cache import TtlCache
from gateway.platform import INVALIDATION_CHANNEL as CHANNEL

log = logging.getLogger(__name__)


def apply_message(
    data: bytes | str,
    *,
    routes: TtlCache[uuid.UUID, Any],
    devices: TtlCache[uuid.UUID, Any],
    on_tenant: Callable[[uuid.UUID], None] | None = None,
) -> None:
    text = data.decode() if isinstance(data, bytes) else data
    kind, _, raw_id = text.partition(":")
    try:
        key = uuid.UUID(raw_id)
    except ValueError:
        log.warning("invalidation: ignoring malformed message %r", text[:100])
        return
    if kind == "tenant":
        routes.invalidate(key)
        if on_tenant is not None:  # the cold path: a new context blob, a pod that let the tenant go
            on_tenant(key)
    elif kind == "device":
        devices.invalidate(key)


async def listen_for_invalidations(
    redis_url: str,
    *,
    routes: TtlCache[uuid.UUID, Any],
    devices: TtlCache[uuid.UUID, Any],
    on_tenant: Callable[[uuid.UUID], None] | None = None,
    on_reset: Callable[[], None] | None = None,
) -> None:
    backoff = 0.1
    while True:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                routes.clear()
                devices.clear()
                if on_reset is not None:
                    on_reset()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        apply_message(message["data"], routes=routes, devices=devices, on_tenant=on_tenant)
        except (RedisError, OSError):
            log.warning("invalidation: Redis subscription lost; retrying in %.1fs", backoff)
        finally:
            await client.aclose()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 5.0)
