"""Per-tenant 256-bit data keys, stored only wrapped (RFC 3394 AES key wrap) by the platform master key."""

import secrets
import uuid

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_write
from core.errors import Conflict, NotFound
from percolate_platform.master_key import fingerprint, master_keyring
from tenants.models import Tenant, TenantKey

DATA_KEY_BYTES = 32
FIRST_USE = Actor.system("platform:key-on-first-use")  # bulk-seeded tenants get their key when first needed


def master_key_id(master_key: bytes | None = None) -> str:
    """A fingerprint naming the master key, so rows wrapped by another master key are recognised."""
    return fingerprint(master_key or settings.PLATFORM_MASTER_KEY)


def tenant_key_create(*, tenant: Tenant) -> TenantKey:
    """A fresh data key for the tenant; the caller holds the transaction and retires the previous key first."""
    data_key = secrets.token_bytes(DATA_KEY_BYTES)
    return TenantKey.objects.create(
        tenant=tenant,
        key_id=f"tk-{secrets.token_hex(12)}",
        wrapped_key=aes_key_wrap(settings.PLATFORM_MASTER_KEY, data_key),
        master_key_id=master_key_id(),
    )


@transaction.atomic
def tenant_key_rotate(*, tenant_id: uuid.UUID, actor: Actor) -> TenantKey:
    """Retire the active key (old objects still open by their key id) and make a new one for new objects."""
    try:
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(f"tenant {tenant_id} does not exist") from exc
    retired = list(TenantKey.objects.filter(tenant=tenant, retired_at__isnull=True).values_list("key_id", flat=True))
    TenantKey.objects.filter(tenant=tenant, retired_at__isnull=True).update(retired_at=timezone.now())
    key = tenant_key_create(tenant=tenant)
    audit_write(
        actor=actor,
        action="tenant.key_rotated",
        tenant=tenant,
        resource_type="tenant_key",
        resource_id=key.id,
        metadata={"retired": retired, "key_id": key.key_id},
    )
    return key


def tenant_data_key(*, tenant_id: uuid.UUID, key_id: str | None = None) -> tuple[str, bytes]:
    """(key id, raw data key): the named key, or the active one (created on first use for bulk-seeded tenants)."""
    keys = TenantKey.objects.filter(tenant_id=tenant_id)
    row = keys.filter(key_id=key_id).first() if key_id else keys.filter(retired_at__isnull=True).first()
    if row is None and key_id is None:
        with transaction.atomic():
            tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
            if tenant is None:
                raise NotFound(f"tenant {tenant_id} does not exist")
            row = keys.filter(retired_at__isnull=True).first()
            if row is None:
                row = tenant_key_create(tenant=tenant)
                audit_write(
                    actor=FIRST_USE,
                    action="tenant.key_created",
                    tenant=tenant,
                    resource_type="tenant_key",
                    resource_id=row.id,
                    metadata={"key_id": row.key_id, "reason": "first use"},
                )
    if row is None:
        raise NotFound(f"tenant {tenant_id} has no key {key_id}")
    master = master_keyring().get(row.master_key_id)  # the current key, or a previous one during a rotation
    if master is None:
        raise Conflict(f"key {row.key_id} was wrapped by master key {row.master_key_id}, not the configured one")
    try:
        return row.key_id, aes_key_unwrap(master, bytes(row.wrapped_key))
    except InvalidUnwrap as exc:
        raise Conflict(f"key {row.key_id} does not unwrap with the configured master key") from exc
