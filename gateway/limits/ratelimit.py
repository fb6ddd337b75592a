"""Per-tenant token buckets: the strategy as a pure function, stored in Redis (atomic Lua) or, when Redis is
down, in this process.

Defined behaviour without Redis: every gateway keeps limiting with its own local buckets (the same rates), so a noisy
tenant is still held back, only less precisely across replicas; we never fail closed on a cache outage.
"""

import asyncio
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


# Takes up to ARGV[4] tokens at once (a lease the gateway spends locally), returns {granted, seconds to next, left}.
_LUA = """
local rate, burst, now, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens, updated = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
local wait = 0
if granted == 0 then wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {granted, tostring(wait), tostring(tokens)}
"""


def lease_size(bucket: Bucket) -> int:
    """Tokens taken from Redis at once: a tenth of the burst, at most 100, so Redis sees one call in up to a hundred
    requests of a busy tenant while a quiet tenant's limit stays exact. A gateway can hold at most a tenth of a
    tenant's burst for at most LEASE_SECONDS; the tiers' bursts (rpm / 6) give leases of 1 to 10 tokens."""
    return max(1, min(100, bucket.burst // 10))


ALLOWED = Decision(True, 0)


class RateLimiter:
    LEASE_SECONDS = 1.0  # unspent leased tokens lapse, so a gateway never sits on a tenant's budget for long

    def __init__(
        self, client: aioredis.Redis | None, *, clock: Callable[[], float] = time.time, local_capacity: int = 100_000
    ) -> None:
        self._client = client
        self._script = client.register_script(_LUA) if client is not None else None
        self._clock = clock
        self._local: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._leases: dict[str, tuple[int, float]] = {}
        self._refills: dict[str, asyncio.Future[Decision]] = {}
        self._known: dict[str, tuple[float, float]] = {}  # tokens left in Redis after our last ask, and when
        self._background: set[asyncio.Task[Decision]] = set()
        self._local_capacity = local_capacity

    def spend(self, key: str) -> bool:
        """Take one token from this gateway's lease for the key, if it holds one: no Redis, no await. `check`
        decides when this says no."""
        return self._spend_lease(key, self._clock())

    def _spend_lease(self, key: str, now: float) -> bool:
        left, until = self._leases.get(key, (0, 0.0))
        if left > 0 and now < until:
            self._leases[key] = (left - 1, until)
            return True
        return False

    async def check(self, key: str, bucket: Bucket) -> Decision:
        while True:
            now = self._clock()
            if self._spend_lease(key, now):
                return ALLOWED
            refill = self._refills.get(key)
            if refill is None:
                break
            decision = await asyncio.shield(refill)  # another request of this tenant is asking Redis: share it
            if not decision.allowed:
                return decision
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._refills[key] = future
        if self._plenty_left(key, bucket, now):
            # An idle tenant's lease has lapsed but its bucket was far from empty: admit now and let the refill
            # (whose first token pays for this request) reach Redis in the background, so the first request after
            # a pause never waits on a round trip. Other gateways may have spent those tokens meanwhile: the margin
            # of a whole lease bounds that overdraft to one request per gateway and lapse.
            task = asyncio.ensure_future(self._refill(key, bucket, now, future))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return ALLOWED
        return await self._refill(key, bucket, now, future)

    def _plenty_left(self, key: str, bucket: Bucket, now: float) -> bool:
        known = self._known.get(key)
        if known is None:
            return False
        left, at = known
        return min(float(bucket.burst), left + max(0.0, now - at) * bucket.rate_per_second) >= lease_size(bucket) + 1

    async def _refill(self, key: str, bucket: Bucket, now: float, future: "asyncio.Future[Decision]") -> Decision:
        decision = Decision(False, 1)
        try:
            decision = await self._ask(key, bucket, now)
            return decision
        finally:
            if self._refills.get(key) is future:
                del self._refills[key]
            future.set_result(decision)

    async def _ask(self, key: str, bucket: Bucket, now: float) -> Decision:
        if self._script is not None:
            try:
                granted, wait, left = await self._script(
                    keys=[f"rl:{key}"], args=[bucket.rate_per_second, bucket.burst, now, lease_size(bucket)]
                )
            except (RedisError, OSError):
                log.warning("rate limiter: Redis unavailable, limiting locally")
            else:
                granted = int(granted)
                self._leases.pop(key, None)
                if len(self._known) >= self._local_capacity:
                    self._known.clear()
                self._known[key] = (float(left), now)
                if granted > 1:
                    if len(self._leases) >= self._local_capacity:
                        self._leases.clear()
                    self._leases[key] = (granted - 1, now + self.LEASE_SECONDS)
                return Decision(granted > 0, 0 if granted else max(1, math.ceil(float(wait))))
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
        return sum(self._open.values())  # read at scrape time only
