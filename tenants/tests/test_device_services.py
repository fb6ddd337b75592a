"""Device services: register (validated Ed25519 + X25519 keys) and revoke, with conflicts and audit rows."""

import base64
import uuid
from typing import Any

import pytest

from core.audit import Actor
from core.errors import Conflict, InvalidInput, NotFound
from tenants.device_services import device_register, device_revoke
from tenants.models import AuditLog, Device, Tenant
from tenants.services import tenant_delete, tenant_suspend
from tenants.tests.test_device_keys import b64url, ed25519_pair, ed25519_pem, p256_pem, rsa_pem, x25519_pem, x25519_raw

pytestmark = pytest.mark.django_db

STAFF = Actor(label="user:bob", ip_address="198.51.100.4")


def register(tenant: Tenant, **overrides: Any) -> Device:
    data: dict[str, Any] = {
        "device_name": "Bob's phone",
        "platform": "ios",
        "public_key_signing": b64url(ed25519_pair()[1]),
        "public_key_encryption": b64url(x25519_raw()),
    } | overrides
    return device_register(tenant_id=tenant.id, actor=STAFF, **data)


def test_register_with_raw_base64url_keys(tenant: Tenant) -> None:
    _, signing = ed25519_pair()
    encryption = x25519_raw()
    device = register(tenant, public_key_signing=b64url(signing), public_key_encryption=b64url(encryption))
    device.refresh_from_db()
    assert device.tenant_id == tenant.id
    assert device.public_key_signing == b64url(signing)
    assert device.public_key_encryption == b64url(encryption)
    assert device.revoked_at is None
    [entry] = AuditLog.objects.filter(action="device.registered")
    assert entry.tenant_id == tenant.id
    assert entry.resource_type == "device"
    assert entry.resource_id == device.id
    assert entry.actor == "user:bob"
    assert entry.ip_address == "198.51.100.4"
    assert entry.metadata == {"device_name": "Bob's phone", "platform": "ios"}


def test_register_with_padded_standard_base64(tenant: Tenant) -> None:
    _, signing = ed25519_pair()
    encryption = x25519_raw()
    device = register(
        tenant,
        public_key_signing=base64.b64encode(signing).decode(),
        public_key_encryption=base64.b64encode(encryption).decode(),
    )
    assert (device.public_key_signing, device.public_key_encryption) == (b64url(signing), b64url(encryption))


def test_register_with_pem_keys(tenant: Tenant) -> None:
    signing_pem, signing = ed25519_pem()
    encryption_pem, encryption = x25519_pem()
    device = register(tenant, public_key_signing=signing_pem, public_key_encryption=encryption_pem, platform="linux")
    assert (device.public_key_signing, device.public_key_encryption) == (b64url(signing), b64url(encryption))


@pytest.mark.parametrize(
    "field,value",
    [
        ("public_key_signing", "rsa"),
        ("public_key_signing", "p256"),
        ("public_key_signing", "x25519_pem"),
        ("public_key_signing", b64url(b"\x07" * 31)),
        ("public_key_signing", b64url(b"\x07" * 33)),
        ("public_key_signing", "garbage!"),
        ("public_key_signing", ""),
        ("public_key_signing", None),
        ("public_key_signing", 12345),
        ("public_key_encryption", "rsa"),
        ("public_key_encryption", "p256"),
        ("public_key_encryption", "ed25519_pem"),
        ("public_key_encryption", b64url(b"\x07" * 16)),
        ("public_key_encryption", "garbage!"),
        ("public_key_encryption", ["not", "a", "string"]),
        ("platform", "windows"),
        ("platform", "iOS"),
        ("platform", None),
        ("platform", ""),
        ("device_name", ""),
        ("device_name", "   "),
        ("device_name", "x" * 256),
        ("device_name", None),
    ],
)
def test_register_bad_input_is_refused_with_field_errors(tenant: Tenant, field: str, value: Any) -> None:
    if value == "rsa":
        value = rsa_pem()
    elif value == "p256":
        value = p256_pem()
    elif value == "x25519_pem":
        value = x25519_pem()[0]
    elif value == "ed25519_pem":
        value = ed25519_pem()[0]
    with pytest.raises(InvalidInput) as info:
        register(tenant, **{field: value})
    assert list(info.value.fields) == [field]
    assert info.value.fields[field]
    assert not Device.objects.exists()
    assert not AuditLog.objects.filter(action="device.registered").exists()


def test_register_reports_every_bad_field_at_once(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput) as info:
        register(tenant, platform="bsd", public_key_signing="x", public_key_encryption="y", device_name="")
    assert set(info.value.fields) == {"platform", "public_key_signing", "public_key_encryption", "device_name"}


def test_register_on_suspended_tenant_is_a_conflict(tenant: Tenant) -> None:
    tenant_suspend(tenant_id=tenant.id, actor=STAFF)
    with pytest.raises(Conflict):
        register(tenant)
    assert not Device.objects.exists()


def test_register_on_deleted_tenant_is_a_conflict(tenant: Tenant) -> None:
    tenant_delete(tenant_id=tenant.id, actor=STAFF)
    with pytest.raises(Conflict):
        register(tenant)
    assert not Device.objects.exists()


@pytest.mark.parametrize("tenant_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_register_on_unknown_tenant_is_not_found(db: None, tenant_id: str) -> None:
    with pytest.raises(NotFound):
        device_register(
            tenant_id=tenant_id,
            device_name="x",
            platform="ios",
            actor=STAFF,
            public_key_signing=b64url(ed25519_pair()[1]),
            public_key_encryption=b64url(x25519_raw()),
        )
    assert not Device.objects.exists()


def test_duplicate_signing_key_is_a_conflict_in_any_encoding(tenant: Tenant, make_tenant: Any) -> None:
    signing_pem, signing = ed25519_pem()
    first = register(tenant, public_key_signing=b64url(signing))
    other = make_tenant()
    for text in (b64url(signing), base64.b64encode(signing).decode(), signing_pem):
        with pytest.raises(Conflict) as info:
            register(other, public_key_signing=text)
        assert "public_key_signing" in info.value.fields
    assert list(Device.objects.values_list("id", flat=True)) == [first.id]
    assert AuditLog.objects.filter(action="device.registered").count() == 1


def test_revoke_sets_revoked_at_and_audits(tenant: Tenant) -> None:
    device = register(tenant)
    revoker = Actor(label="user:carol", ip_address="2001:db8::5")
    revoked = device_revoke(device_id=device.id, actor=revoker)
    assert revoked.revoked_at is not None
    device.refresh_from_db()
    assert device.revoked_at == revoked.revoked_at
    [entry] = AuditLog.objects.filter(action="device.revoked")
    assert (entry.tenant_id, entry.resource_id, entry.actor) == (tenant.id, device.id, "user:carol")
    assert entry.ip_address == "2001:db8::5"
    assert entry.metadata == {"device_name": "Bob's phone"}


def test_revoke_is_idempotent(tenant: Tenant) -> None:
    device = register(tenant)
    first = device_revoke(device_id=str(device.id), actor=STAFF).revoked_at
    assert device_revoke(device_id=device.id, actor=STAFF).revoked_at == first
    assert AuditLog.objects.filter(action="device.revoked").count() == 1


@pytest.mark.parametrize("device_id", [str(uuid.uuid4()), "garbage"])
def test_revoke_unknown_device_is_not_found(db: None, device_id: str) -> None:
    with pytest.raises(NotFound):
        device_revoke(device_id=device_id, actor=STAFF)
