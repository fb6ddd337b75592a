import asyncio
import uuid

import redis.asyncio as aioredis
from django.conf import settings

from gateway.limits.ratelimit import Bucket, RateLimiter, StreamSlots, take


def test_take_refills_at_rate_up_to_burst() -> None:
    bucket = Bucket(rate_per_second=2, burst=3)
    allowed, tokens, _ = take(bucket, 0.0, 0.0, 10.0)
    assert allowed and tokens == 2.0
    allowed, tokens, wait = take(bucket, 0.0, 0.0, 0.25)
    assert not allowed and wait == 0.25


def test_redis_bucket_isolates_a_noisy_tenant_from_a_quiet_one() -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
        limiter = RateLimiter(client, clock=lambda: 1000.0)
        bucket = Bucket(rate_per_second=1, burst=5)
        noisy, quiet = f"noisy-{uuid.uuid4()}", f"quiet-{uuid.uuid4()}"
        results = [(await limiter.check(noisy, bucket)) for _ in range(20)]
        assert sum(d.allowed for d in results) == 5
        refused = [d for d in results if not d.allowed]
        assert all(d.retry_after >= 1 and not d.degraded for d in refused)
        assert (await limiter.check(quiet, bucket)).allowed
        await client.aclose()

    asyncio.run(scenario())


def test_redis_down_limits_locally() -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        limiter = RateLimiter(client, clock=lambda: 0.0)
        bucket = Bucket(rate_per_second=1, burst=2)
        decisions = [await limiter.check("t", bucket) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, False, False]
        assert all(d.degraded for d in decisions)
        await client.aclose()

    asyncio.run(scenario())


def test_stream_slots_cap_per_tenant() -> None:
    slots = StreamSlots()
    assert slots.acquire("a", 2) and slots.acquire("a", 2)
    assert not slots.acquire("a", 2)
    assert slots.acquire("b", 2)
    slots.release("a")
    assert slots.acquire("a", 2)
    assert slots.open_count() == 3


def test_a_busy_tenant_leases_tokens_so_redis_sees_a_fraction_of_its_requests() -> None:
    from gateway.limits.ratelimit import lease_size

    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
        now = [5000.0]
        limiter = RateLimiter(client, clock=lambda: now[0])
        bucket = Bucket(rate_per_second=10, burst=100)
        key = f"busy-{uuid.uuid4()}"
        assert lease_size(bucket) == 10
        decisions = [await limiter.check(key, bucket) for _ in range(150)]
        assert sum(d.allowed for d in decisions) == 100  # never more than the burst, leases included
        state = await client.hmget(f"rl:{key}", "t")
        assert float(state[0] or 0) < 1
        await client.aclose()

    asyncio.run(scenario())


def test_concurrent_requests_of_one_tenant_share_a_refill_and_never_exceed_the_burst() -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
        limiter = RateLimiter(client, clock=lambda: 9000.0)
        bucket = Bucket(rate_per_second=1, burst=50)
        key = f"herd-{uuid.uuid4()}"
        decisions = await asyncio.gather(*(limiter.check(key, bucket) for _ in range(200)))
        assert sum(d.allowed for d in decisions) == 50
        assert all(d.retry_after >= 1 for d in decisions if not d.allowed)
        await client.aclose()

    asyncio.run(scenario())


class GatedScript:
    """The limiter's Redis script, held until the test opens the gate: shows who waits on the round trip."""

    def __init__(self, script) -> None:
        self.script, self.gate, self.calls = script, asyncio.Event(), 0

    async def __call__(self, **kwargs):
        self.calls += 1
        await self.gate.wait()
        return await self.script(**kwargs)


def test_an_idle_tenants_first_request_does_not_wait_for_redis_and_is_still_paid_for() -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
        now = [7000.0]
        limiter = RateLimiter(client, clock=lambda: now[0])
        bucket = Bucket(rate_per_second=1, burst=100)
        key = f"idle-{uuid.uuid4()}"
        assert (await limiter.check(key, bucket)).allowed  # first ever: asks Redis (nothing known yet)
        now[0] += 5  # idle: the lease lapsed, the bucket is far from empty
        gated = limiter._script = GatedScript(limiter._script)  # type: ignore[assignment]
        decision = await asyncio.wait_for(limiter.check(key, bucket), 1)
        assert decision.allowed and gated.calls == 1  # admitted while the refill is still on its way
        gated.gate.set()
        assert (await limiter.check(key, bucket)).allowed  # waits for that refill, then spends its lease
        left = float((await client.hmget(f"rl:{key}", "t"))[0])
        assert (
            left == 100 - 10 + 5 - 10
        )  # two leases of ten (5 s refilled 5): the early request was paid from the second
        await client.aclose()

    asyncio.run(scenario())


def test_admitting_ahead_of_redis_never_lets_a_tenant_past_its_burst() -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
        now = [8000.0]
        limiter = RateLimiter(client, clock=lambda: now[0])
        bucket = Bucket(rate_per_second=0.001, burst=5)  # a lease of one token: the tiers' small buckets
        key = f"spent-{uuid.uuid4()}"
        decisions = []
        for _ in range(8):
            decisions.append(await limiter.check(key, bucket))
            now[0] += 2  # each lease lapses before the next request
        assert sum(d.allowed for d in decisions) == 5
        assert all(not d.degraded for d in decisions)
        assert float((await client.hmget(f"rl:{key}", "t"))[0]) < 1
        await client.aclose()

    asyncio.run(scenario())
