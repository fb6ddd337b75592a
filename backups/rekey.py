"""Master key rotation: re-wrap every tenant data key under the configured master key, archives untouched.

Tenant data keys never change, only their wrapping: every archive and context blob (sealed under the data keys)
still opens. The rotation is online and resumable:

1. configure the new key as PLATFORM_MASTER_KEY and the old one in PLATFORM_MASTER_KEY_PREVIOUS (both unwrap; new
   keys are wrapped by the new one from then on);
2. `manage.py rotate_master_key` re-wraps, in batches of rows locked `FOR UPDATE SKIP LOCKED`, every key whose
   master_key_id is not the current one; a crash or Ctrl-C loses nothing, the next run continues where it stopped;
3. once it reports 0 left, drop the old key from PLATFORM_MASTER_KEY_PREVIOUS (keep it in escrow while backups
   sealed under it are retained).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from core.audit import Actor, audit_write
from core.errors import Conflict
from percolate_platform.master_key import fingerprint, master_keyring
from tenants.models import TenantKey

DEFAULT_BATCH = 5_000


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    remaining: int
    by_master: dict[str, int]


def keys_to_rewrap() -> dict[str, int]:
    """Keys not under the current master key, counted by the master key that wraps them."""
    current = fingerprint(settings.PLATFORM_MASTER_KEY)
    rows = (
        TenantKey.objects.exclude(master_key_id=current).values_list("master_key_id").order_by().annotate(n=Count("id"))
    )
    return {master_id: n for master_id, n in rows}


def _rewrap_batch(
    *, after: Any, batch_size: int, current: str, new_key: bytes, keyring: dict[str, bytes]
) -> tuple[dict[str, int], Any]:
    """One transaction: the next ``batch_size`` keys by id after ``after``; returns the counts and the last id."""
    done: dict[str, int] = {}
    with transaction.atomic():
        pending = TenantKey.objects.select_for_update(skip_locked=True).exclude(master_key_id=current)
        if after is not None:
            pending = pending.filter(id__gt=after)
        rows = list(pending.order_by("id").values_list("id", "key_id", "wrapped_key", "master_key_id")[:batch_size])
        updates = []
        for row_id, key_id, wrapped, master_id in rows:
            old = keyring.get(master_id)
            if old is None:
                raise Conflict(
                    f"key {key_id} is wrapped by master key {master_id}: add it to PLATFORM_MASTER_KEY_PREVIOUS"
                )
            try:
                data_key = aes_key_unwrap(old, bytes(wrapped))
            except InvalidUnwrap as exc:
                raise Conflict(f"key {key_id} does not unwrap with master key {master_id}") from exc
            updates.append((row_id, aes_key_wrap(new_key, data_key)))
            done[master_id] = done.get(master_id, 0) + 1
        if updates:
            with connection.cursor() as cursor:  # one statement per batch, not one per key
                cursor.execute(
                    "UPDATE tenant_keys AS k SET wrapped_key = v.wrapped, master_key_id = %s "
                    "FROM unnest(%s::uuid[], %s::bytea[]) AS v(id, wrapped) WHERE k.id = v.id",
                    [current, [row_id for row_id, _ in updates], [wrapped for _, wrapped in updates]],
                )
    return done, (rows[-1][0] if rows else None)


def master_key_rewrap(
    *, actor: Actor, batch_size: int = DEFAULT_BATCH, progress: Callable[[int], None] = lambda n: None
) -> RewrapResult:
    """Re-wrap every tenant key not under the configured master key; resumable, safe beside live traffic.

    Rows another transaction holds locked are skipped in this pass and counted in ``remaining``: run it again."""
    current = fingerprint(settings.PLATFORM_MASTER_KEY)
    keyring = master_keyring()
    total: dict[str, int] = {}
    after = None
    while True:  # keyset pagination by id: each batch starts where the last one ended
        done, after = _rewrap_batch(
            after=after, batch_size=batch_size, current=current, new_key=settings.PLATFORM_MASTER_KEY, keyring=keyring
        )
        if after is None:
            break
        for master_id, n in done.items():
            total[master_id] = total.get(master_id, 0) + n
        progress(sum(done.values()))
    remaining = sum(keys_to_rewrap().values())
    audit_write(
        actor=actor,
        action="platform.master_key_rotated",
        tenant=None,
        resource_type="tenant_key",
        metadata={"master_key_id": current, "rewrapped": total, "remaining": remaining},
    )
    return RewrapResult(sum(total.values()), remaining, total)
