"""Per-tenant token buckets: the strategy as a pure function, stored in Redis (atomic Lua) or, when Redis is
down, in this process.

Defined behaviour without Redis: every gateway keeps limiting with its own local buckets (the same rates), so a noisy
tenant is still held back, only less precisely across replicas; we never fail closed on a cache outage.
"""

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bucket:
    rate_per_second: float
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds, ≥ 1 when refused
    degraded: bool = False  # decided locally because Redis did not answer


def take(bucket: Bucket, tokens: float, updated_at: float, now: float) -> tuple[bool, float, float]:
    """(allowed, tokens left, seconds until one token) for one request; the same arithmetic as the Lua script."""
    tokens = min(float(bucket.burst), tokens + max(0.0, now - updated_at) * bucket.rate_per_second)
    if tokens >= 1.0:
        return True, tokens - 1.0, 0.0
    return False, tokens, (1.0 - tokens) / bucket.rate_per_second


_LUA = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens, updated = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then allowed = 1; tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimiter:
    def __init__(
        self, client: aioredis.Redis | None, *, clock: Callable[[], float] = time.time, local_capacity: int = 100_000
    ) -> None:
        self._client = client
        self._script = client.register_script(_LUA) if client is not None else None
        self._clock = clock
        self._local: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._local_capacity = local_capacity

    async def check(self, key: str, bucket: Bucket) -> Decision:
        now = self._clock()
        if self._script is not None:
            try:
                allowed, wait = await self._script(keys=[f"rl:{key}"], args=[bucket.rate_per_second, bucket.burst, now])
                return Decision(bool(allowed), 0 if allowed else max(1, math.ceil(float(wait))))
            except (RedisError, OSError):
                log.warning("rate limiter: Redis unavailable, limiting locally")
        return self._check_local(key, bucket, now)

    def _check_local(self, key: str, bucket: Bucket, now: float) -> Decision:
        tokens, updated = self._local.get(key, (float(bucket.burst), now))
        allowed, tokens, wait = take(bucket, tokens, updated, now)
        self._local[key] = (tokens, now)
        self._local.move_to_end(key)
        while len(self._local) > self._local_capacity:
            self._local.popitem(last=False)
        return Decision(allowed, 0 if allowed else max(1, math.ceil(wait)), degraded=True)


class StreamSlots:
    """A cap on concurrent streams per tenant in this gateway process."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def acquire(self, key: str, limit: int) -> bool:
        if self._open.get(key, 0) >= limit:
            return False
        self._open[key] = self._open.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def open_count(self) -> int:
        return sum(self._open.values())
