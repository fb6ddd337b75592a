"""Per-tenant data keys: wrapped by the master key, never stored raw, rotatable, refused under a wrong master key."""

import base64
import secrets
import uuid

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from django.conf import settings
from django.db import connection

from conftest import TEST_ACTOR
from core.errors import Conflict, NotFound
from tenants.keys import DATA_KEY_BYTES, master_key_id, tenant_data_key, tenant_key_create, tenant_key_rotate
from tenants.models import AuditLog, Tenant, TenantKey

pytestmark = pytest.mark.django_db


def test_master_key_is_32_bytes_and_fingerprinted() -> None:
    assert len(settings.PLATFORM_MASTER_KEY) == 32
    assert master_key_id() == master_key_id(settings.PLATFORM_MASTER_KEY)
    assert len(master_key_id()) == 16
    assert master_key_id(b"\x01" * 32) != master_key_id(b"\x02" * 32)


def test_wrap_unwrap_round_trip(tenant: Tenant) -> None:
    key_id, data_key = tenant_data_key(tenant_id=tenant.id)
    row = TenantKey.objects.get(tenant=tenant)
    assert key_id == row.key_id
    assert len(data_key) == DATA_KEY_BYTES
    assert row.master_key_id == master_key_id()
    assert aes_key_unwrap(settings.PLATFORM_MASTER_KEY, bytes(row.wrapped_key)) == data_key
    # stable: the same key every time it is asked for
    assert tenant_data_key(tenant_id=tenant.id) == (key_id, data_key)
    assert tenant_data_key(tenant_id=tenant.id, key_id=key_id) == (key_id, data_key)


def test_each_tenant_gets_its_own_key(make_tenant: object) -> None:
    keys = {tenant_data_key(tenant_id=make_tenant().id)[1] for _ in range(5)}
    assert len(keys) == 5


def test_database_never_holds_the_raw_key(tenant: Tenant) -> None:
    _, data_key = tenant_data_key(tenant_id=tenant.id)
    row = TenantKey.objects.get(tenant=tenant)
    assert data_key not in bytes(row.wrapped_key)
    forms = [data_key.hex(), base64.b64encode(data_key).decode(), base64.urlsafe_b64encode(data_key).decode()[:40]]
    with connection.cursor() as cursor:
        for table in ("tenant_keys", "tenants", "tenant_states", "audit_log"):
            cursor.execute(f"SELECT t::text FROM {table} t")
            dump = "\n".join(r[0] for r in cursor.fetchall())
            for form in forms:
                assert form not in dump, f"raw key found in {table}"
            assert data_key.hex() not in dump.replace("\\x", "")
        cursor.execute("SELECT encode(wrapped_key, 'hex') FROM tenant_keys")
        assert all(data_key.hex() not in r[0] for r in cursor.fetchall())


def test_rotation_keeps_old_keys_openable(tenant: Tenant) -> None:
    old_id, old_key = tenant_data_key(tenant_id=tenant.id)
    new_row = tenant_key_rotate(tenant_id=tenant.id, actor=TEST_ACTOR)
    new_id, new_key = tenant_data_key(tenant_id=tenant.id)
    assert new_id == new_row.key_id != old_id
    assert new_key != old_key
    assert tenant_data_key(tenant_id=tenant.id, key_id=old_id) == (old_id, old_key)
    assert TenantKey.objects.get(key_id=old_id).retired_at is not None
    assert TenantKey.objects.filter(tenant=tenant, retired_at__isnull=True).count() == 1
    # and again: every retired key still opens
    tenant_key_rotate(tenant_id=tenant.id, actor=TEST_ACTOR)
    assert tenant_data_key(tenant_id=tenant.id, key_id=old_id)[1] == old_key
    assert tenant_data_key(tenant_id=tenant.id, key_id=new_id)[1] == new_key
    assert TenantKey.objects.filter(tenant=tenant).count() == 3
    rotations = AuditLog.objects.filter(tenant=tenant, action="tenant.key_rotated").order_by("created_at")
    assert [row.metadata["retired"] for row in rotations] == [[old_id], [new_id]]


def test_wrong_master_key_is_a_conflict(tenant: Tenant, settings: object) -> None:
    key_id, _ = tenant_data_key(tenant_id=tenant.id)
    settings.PLATFORM_MASTER_KEY = secrets.token_bytes(32)  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="master key"):
        tenant_data_key(tenant_id=tenant.id)
    with pytest.raises(Conflict):
        tenant_data_key(tenant_id=tenant.id, key_id=key_id)


def test_tampered_wrapped_key_is_a_conflict(tenant: Tenant) -> None:
    row = TenantKey.objects.get(tenant=tenant)
    wrapped = bytearray(bytes(row.wrapped_key))
    wrapped[5] ^= 0x01
    TenantKey.objects.filter(pk=row.pk).update(wrapped_key=bytes(wrapped))
    with pytest.raises(Conflict, match="does not unwrap"):
        tenant_data_key(tenant_id=tenant.id)


def test_key_is_created_lazily_for_a_tenant_without_one(db: None) -> None:
    tenant = Tenant.objects.create(email="seeded@example.com", tier="C")  # as bulk seeding leaves it
    assert not TenantKey.objects.filter(tenant=tenant).exists()
    key_id, data_key = tenant_data_key(tenant_id=tenant.id)
    row = TenantKey.objects.get(tenant=tenant)
    assert row.key_id == key_id
    assert row.retired_at is None
    assert len(data_key) == DATA_KEY_BYTES
    assert tenant_data_key(tenant_id=tenant.id) == (key_id, data_key)
    assert TenantKey.objects.filter(tenant=tenant).count() == 1
    created = AuditLog.objects.get(tenant=tenant, action="tenant.key_created")
    assert created.actor == "platform:key-on-first-use" and created.metadata["key_id"] == key_id


def test_unknown_tenant_is_not_found(db: None) -> None:
    with pytest.raises(NotFound):
        tenant_data_key(tenant_id=uuid.uuid4())
    assert not TenantKey.objects.exists()


@pytest.mark.parametrize("bad", [uuid.uuid4(), "garbage"])
def test_rotate_unknown_tenant_is_not_found(db: None, bad: object) -> None:
    with pytest.raises(NotFound):
        tenant_key_rotate(tenant_id=bad, actor=TEST_ACTOR)
    assert not TenantKey.objects.exists()


def test_unknown_key_id_is_not_found(tenant: Tenant, make_tenant: object) -> None:
    with pytest.raises(NotFound):
        tenant_data_key(tenant_id=tenant.id, key_id="tk-doesnotexist")
    other_id, _ = tenant_data_key(tenant_id=make_tenant().id)
    with pytest.raises(NotFound):  # another tenant's key id does not open for this tenant
        tenant_data_key(tenant_id=tenant.id, key_id=other_id)


def test_key_create_makes_an_active_wrapped_key(db: None) -> None:
    tenant = Tenant.objects.create(email="k@example.com", tier="A")
    row = tenant_key_create(tenant=tenant)
    assert row.key_id.startswith("tk-")
    assert len(bytes(row.wrapped_key)) == DATA_KEY_BYTES + 8
