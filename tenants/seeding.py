"""Bulk-load synthetic tenants with their state rows: PostgreSQL `COPY` in batches, `bulk_create` elsewhere.

For load tests, benchmarks and staging. Rows are generated in Python (no per-row ORM objects on PostgreSQL):

- ids are uuid4 made from `os.urandom`, emails `seed-<n>-<run token>@example.com` (lower-case, unique per run);
- tiers are A 5%, B 25%, C 70%; everything is `active` and `node_based`;
- tier A tenants are warm or hot (kept warm by policy); B and C are mostly cold (hot 1%, warm 4%), with
  `last_access_at` spread over the last 120 days so the cold-tenant sweep has work; generation 1.

Each batch is one transaction (tenants and their states together), so an interrupted run leaves whole batches only.
Rows are generated on a background thread while the database loads the previous batch, and on PostgreSQL
`DEFAULT_WORKERS` connections COPY batches concurrently (index maintenance is the bottleneck, and it is per backend);
inside a caller's transaction everything stays on the caller's connection. One audit row records the whole run.
No data keys are created: `tenants.keys.tenant_data_key` makes one lazily.
"""

import contextlib
import os
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from django.db import connection, transaction
from django.utils import timezone

from core.audit import Actor, audit_write
from core.errors import InvalidInput
from tenants.models import SecurityMode, State, Tenant, TenantState, TenantStatus, Tier

T = TypeVar("T")

DEFAULT_BATCH = 50_000
DEFAULT_WORKERS = 2
MAX_COUNT = 100_000_000
IDLE_SPREAD_DAYS = 120

_TIERS = (Tier.A.value, Tier.B.value, Tier.C.value)
_TIER_CUM_WEIGHTS = (5, 30, 100)
HOT, WARM, COLD = State.HOT.value, State.WARM.value, State.COLD.value
# Tier A is kept warm by policy (20% hot, 80% warm); B and C: 1% hot, 4% warm, 95% cold.
_STATE_THRESHOLDS = {"A": (0.2, 2.0), "B": (0.01, 0.05), "C": (0.01, 0.05)}
_PODS_PER_TIER = {"A": 4, "B": 8, "C": 16}

# uuid4: version nibble 4 in byte 6, RFC 4122 variant (10xx) in byte 8.
_VERSION_TABLE = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT_TABLE = bytes((b & 0x3F) | 0x80 for b in range(256))


@dataclass(frozen=True)
class SeedBatch:
    """One batch, column by column, sorted by id (in-order inserts into the primary-key indexes are much faster)."""

    ids: list[str]  # 32 hex digits
    emails: list[str]
    tiers: list[str]
    states: list[str]
    pod_ids: list[str | None]
    last_access: list[int]  # unix seconds

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class SeedResult:
    count: int
    seconds: float
    batches: int
    run_token: str
    method: str

    @property
    def rate_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def uuid4_hex(n: int) -> list[str]:
    """`n` random version-4 UUIDs as 32-digit hex strings (PostgreSQL's uuid input accepts them as they are)."""
    buf = bytearray(os.urandom(16 * n))
    buf[6::16] = bytes(buf[6::16]).translate(_VERSION_TABLE)
    buf[8::16] = bytes(buf[8::16]).translate(_VARIANT_TABLE)
    text = buf.hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def generate_rows(*, start: int, count: int, run_token: str, now: datetime, rng: random.Random) -> SeedBatch:
    """`count` synthetic tenants numbered from `start`."""
    ids = uuid4_hex(count)
    ids.sort()
    tiers = rng.choices(_TIERS, cum_weights=_TIER_CUM_WEIGHTS, k=count)
    now_s = int(now.timestamp())
    spread = IDLE_SPREAD_DAYS * 86_400
    rand, randrange = rng.random, rng.randrange
    states: list[str] = []
    pods: list[str | None] = []
    seen: list[int] = []
    for tier in tiers:
        draw = rand()
        hot_below, warm_below = _STATE_THRESHOLDS[tier]
        state = HOT if draw < hot_below else WARM if draw < warm_below else COLD
        states.append(state)
        if state == COLD:
            pods.append(None)
            seen.append(now_s - randrange(spread))
        else:
            pods.append(f"tier-{tier.lower()}-{randrange(_PODS_PER_TIER[tier])}")
            seen.append(now_s - randrange(3600))
    emails = [f"seed-{n}-{run_token}@example.com" for n in range(start, start + count)]
    return SeedBatch(ids, emails, tiers, states, pods, seen)


class _TimestampText:
    """Unix seconds → `YYYY-MM-DD HH:MM:SS+00`, formatting each distinct minute once."""

    def __init__(self) -> None:
        self._minutes: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        minute, second = divmod(ts, 60)
        text = self._minutes.get(minute)
        if text is None:
            text = self._minutes[minute] = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M")
        return f"{text}:{second:02d}+00"


def copy_payloads(batch: SeedBatch, stamp: Callable[[int], str] | None = None) -> tuple[str, str]:
    """The two COPY payloads (text format): tenants and tenant_states."""
    stamp = stamp or _TimestampText()
    suffix = f"\t{TenantStatus.ACTIVE.value}\t{SecurityMode.NODE_BASED.value}\n"
    tenants = "".join(
        f"{tid}\t{email}\t{tier}{suffix}" for tid, email, tier in zip(batch.ids, batch.emails, batch.tiers, strict=True)
    )
    states = "".join(
        f"{tid}\t{state}\t1\t{pod}\ttier-{tier.lower()}\t{stamp(ts)}\n"
        if pod
        else f"{tid}\t{state}\t1\t\\N\t\\N\t{stamp(ts)}\n"
        for tid, tier, state, pod, ts in zip(
            batch.ids, batch.tiers, batch.states, batch.pod_ids, batch.last_access, strict=True
        )
    )
    return tenants, states


def _insert_copy(payloads: tuple[str, str]) -> None:
    tenants, states = payloads
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {Tenant._meta.db_table} (id, email, tier, status, security_mode) FROM STDIN") as copy:
            copy.write(tenants)
        with cursor.copy(
            f"COPY {TenantState._meta.db_table} "
            "(tenant_id, state, generation, pod_id, tier_deployment, last_access_at) FROM STDIN"
        ) as copy:
            copy.write(states)


def _insert_orm(batch: SeedBatch) -> None:
    Tenant.objects.bulk_create(
        [
            Tenant(id=tid, email=email, tier=tier)
            for tid, email, tier in zip(batch.ids, batch.emails, batch.tiers, strict=True)
        ],
        batch_size=1000,
    )
    TenantState.objects.bulk_create(
        [
            TenantState(
                tenant_id=tid,
                state=state,
                generation=1,
                pod_id=pod,
                tier_deployment=f"tier-{tier.lower()}" if pod else None,
                last_access_at=datetime.fromtimestamp(ts, UTC),
            )
            for tid, tier, state, pod, ts in zip(
                batch.ids, batch.tiers, batch.states, batch.pod_ids, batch.last_access, strict=True
            )
        ],
        batch_size=1000,
    )


def uses_copy() -> bool:
    return connection.vendor == "postgresql"


def _batches(count: int, batch_size: int) -> Iterator[tuple[int, int]]:
    done = 0
    while done < count:
        size = min(batch_size, count - done)
        yield done, size
        done += size


_DONE = object()


def _prefetched(produce: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run a generator in a background thread, `depth` items ahead: rows are generated while the database works."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in produce:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:
            items.put(exc)

    thread = threading.Thread(target=worker, name="seed-rows", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # a T: the sentinel and errors are handled above
    finally:
        stop.set()
        thread.join(timeout=5)


def _copy_in_own_transaction(payloads: tuple[str, str]) -> None:
    """One batch on this worker thread's own connection, in its own transaction."""
    try:
        with transaction.atomic():
            _insert_copy(payloads)
    finally:
        connection.close()


def _insert_parallel(items: Iterator[tuple[int, object]], workers: int, on_done: Callable[[int], None]) -> None:
    """COPY batches on `workers` threads; `on_done(size)` for each committed batch, in the calling thread.

    On the first failure no new batch starts; the batches in flight finish (commit or roll back) and are counted,
    then the error is raised.
    """
    pending: dict[Future[None], int] = {}
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed-copy") as pool:
        try:
            with contextlib.closing(items):  # type: ignore[type-var]  # a generator: it has close()
                for size, payload in items:
                    while len(pending) >= workers:
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            n = pending.pop(future)
                            future.result()
                            on_done(n)
                    pending[pool.submit(_copy_in_own_transaction, payload)] = size  # type: ignore[arg-type]  # COPY payloads here
        except BaseException as exc:
            error = exc
        for future, n in pending.items():
            try:
                future.result()
            except BaseException as exc:
                error = error or exc
            else:
                on_done(n)
    if error is not None:
        raise error


def tenants_seed(
    *,
    count: int,
    actor: Actor,
    batch_size: int = DEFAULT_BATCH,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
    seed: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> SeedResult:
    """Insert `count` synthetic tenants with states in batches; one audit row for the run (also when it fails).

    On PostgreSQL, `workers` connections COPY batches concurrently (each batch its own transaction), unless the caller
    holds a transaction: then every batch is a savepoint in it, on the caller's connection.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"invalid count: {count!r}", fields={"count": [f"Must be between 1 and {MAX_COUNT}."]})
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 1_000_000:
        raise InvalidInput(f"invalid batch size: {batch_size!r}", fields={"batch": ["Must be between 1 and 1000000."]})
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidInput(f"invalid start: {start!r}", fields={"start": ["Must be a non-negative integer."]})
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
        raise InvalidInput(f"invalid workers: {workers!r}", fields={"workers": ["Must be between 1 and 16."]})
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    run_token = secrets.token_hex(6)
    method = "copy" if uses_copy() else "bulk_create"
    now = timezone.now()
    stamp = _TimestampText()

    def produce() -> Iterator[tuple[int, object]]:
        for offset, size in _batches(count, batch_size):
            batch = generate_rows(start=start + offset, count=size, run_token=run_token, now=now, rng=rng)
            yield size, (copy_payloads(batch, stamp) if method == "copy" else batch)

    if method != "copy" or connection.in_atomic_block:
        workers = 1
    done = batches = 0

    def batch_done(size: int) -> None:
        nonlocal done, batches
        done += size
        batches += 1
        if progress is not None:
            progress(size)

    began = time.perf_counter()
    error: BaseException | None = None
    try:
        if workers > 1:
            _insert_parallel(_prefetched(produce(), depth=workers + 1), workers, batch_done)
        else:
            for size, payload in _prefetched(produce()):
                with transaction.atomic():
                    if method == "copy":
                        _insert_copy(payload)  # type: ignore[arg-type]  # produce() yields what `method` needs
                    else:
                        _insert_orm(payload)  # type: ignore[arg-type]  # produce() yields what `method` needs
                batch_done(size)
    except BaseException as exc:
        error = exc
        raise
    finally:
        seconds = time.perf_counter() - began
        metadata: dict[str, object] = {
            "requested": count,
            "created": done,
            "batches": batches,
            "batch_size": batch_size,
            "method": method,
            "workers": workers,
            "run_token": run_token,
            "email_pattern": f"seed-<n>-{run_token}@example.com",
            "first_n": start,
            "seconds": round(seconds, 3),
        }
        if error is not None:
            metadata["error"] = f"{type(error).__name__}: {error}"[:500]
        if done or error is None:
            _audit_after(actor=actor, metadata=metadata, failed=error is not None)
    return SeedResult(count=done, seconds=seconds, batches=batches, run_token=run_token, method=method)


def _audit_after(*, actor: Actor, metadata: dict[str, object], failed: bool) -> None:
    try:
        if failed and connection.in_atomic_block and connection.needs_rollback:
            return  # the caller's transaction is broken; it will roll our rows back anyway
        audit_write(
            actor=actor,
            action="tenants.seeded",
            tenant=None,
            resource_type="tenant",
            resource_id=None,
            metadata=metadata,
        )
    except Exception:
        if not failed:
            raise


def analyze_tables() -> None:
    """Refresh planner statistics after a bulk load (PostgreSQL; a no-op elsewhere)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Tenant._meta.db_table}, {TenantState._meta.db_table}")


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_WORKERS",
    "SeedBatch",
    "SeedResult",
    "analyze_tables",
    "copy_payloads",
    "generate_rows",
    "tenants_seed",
    "uuid4_hex",
]
