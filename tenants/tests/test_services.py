"""Tenant services: provision, suspend, reactivate, delete; validation, conflicts, atomicity and audit rows."""

from collections.abc import Callable

import pytest

from core.audit import Actor
from core.errors import Conflict, InvalidInput, NotFound
from tenants import services
from tenants.models import AuditLog, Device, Tenant, TenantKey, TenantState
from tenants.services import tenant_delete, tenant_provision, tenant_reactivate, tenant_suspend

pytestmark = pytest.mark.django_db

STAFF = Actor(label="user:alice", ip_address="192.0.2.10", user_agent="pytest-agent")


def _nothing_written() -> None:
    assert Tenant.objects.count() == 0
    assert TenantState.objects.count() == 0
    assert TenantKey.objects.count() == 0
    assert AuditLog.objects.count() == 0


# --- provision ---------------------------------------------------------------------------------------------------


def test_provision_creates_tenant_state_key_and_audit() -> None:
    tenant = tenant_provision(email="  New.User@Example.COM ", tier="A", security_mode="mobile_only", actor=STAFF)
    tenant.refresh_from_db()
    assert tenant.email == "new.user@example.com"
    assert (tenant.tier, tenant.status, tenant.security_mode) == ("A", "active", "mobile_only")
    state = TenantState.objects.get(tenant=tenant)
    assert state.state == "cold"
    assert state.generation == 1
    key = TenantKey.objects.get(tenant=tenant)
    assert key.retired_at is None
    assert len(bytes(key.wrapped_key)) == 40  # RFC 3394 wrap of 32 bytes
    entry = AuditLog.objects.get(tenant=tenant)
    assert entry.action == "tenant.created"
    assert entry.actor == "user:alice"
    assert entry.ip_address == "192.0.2.10"
    assert entry.user_agent == "pytest-agent"
    assert entry.resource_type == "tenant"
    assert entry.resource_id == tenant.id
    assert entry.metadata == {
        "email": "new.user@example.com",
        "tier": "A",
        "security_mode": "mobile_only",
        "key_id": key.key_id,
    }


def test_provision_default_security_mode_is_node_based() -> None:
    assert tenant_provision(email="d@example.com", tier="C", actor=STAFF).security_mode == "node_based"


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"email": "not-an-email", "tier": "B"}, "email"),
        ({"email": "", "tier": "B"}, "email"),
        ({"email": None, "tier": "B"}, "email"),
        ({"email": 42, "tier": "B"}, "email"),
        ({"email": ["a@example.com"], "tier": "B"}, "email"),
        ({"email": "a@example.com", "tier": "D"}, "tier"),
        ({"email": "a@example.com", "tier": "b"}, "tier"),
        ({"email": "a@example.com", "tier": None}, "tier"),
        ({"email": "a@example.com", "tier": "B", "security_mode": "cloud"}, "security_mode"),
        ({"email": "a@example.com", "tier": "B", "security_mode": None}, "security_mode"),
    ],
)
def test_provision_bad_input_is_refused_with_field_errors(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        tenant_provision(**kwargs, actor=STAFF)
    assert field in info.value.fields
    assert info.value.fields[field]
    assert info.value.http_status == 400
    _nothing_written()


@pytest.mark.parametrize(
    "second", ["owner@example.com", "OWNER@example.com", "Owner@Example.Com", " owner@EXAMPLE.com"]
)
def test_provision_duplicate_email_in_any_case_is_a_conflict(second: str) -> None:
    first = tenant_provision(email="owner@example.com", tier="B", actor=STAFF)
    with pytest.raises(Conflict) as info:
        tenant_provision(email=second, tier="A", actor=STAFF)
    assert info.value.http_status == 409
    assert "email" in info.value.fields
    assert list(Tenant.objects.values_list("id", flat=True)) == [first.id]
    assert TenantState.objects.count() == 1
    assert TenantKey.objects.count() == 1
    assert AuditLog.objects.count() == 1


def test_provision_is_atomic_when_a_later_step_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: object) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_write", boom)
    with pytest.raises(RuntimeError):
        tenant_provision(email="atomic@example.com", tier="B", actor=STAFF)
    _nothing_written()


def test_provision_is_atomic_when_key_creation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: object) -> None:
        raise RuntimeError("kms down")

    monkeypatch.setattr(services, "tenant_key_create", boom)
    with pytest.raises(RuntimeError):
        tenant_provision(email="atomic@example.com", tier="B", actor=STAFF)
    _nothing_written()


# --- suspend / reactivate / delete -------------------------------------------------------------------------------


def _audits(tenant: Tenant, action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(tenant=tenant, action=action).order_by("created_at"))


def test_suspend_writes_audit_with_actor_ip_and_changes(tenant: Tenant) -> None:
    result = tenant_suspend(tenant_id=tenant.id, actor=STAFF, reason="chargeback")
    assert result.status == "suspended"
    tenant.refresh_from_db()
    assert tenant.status == "suspended"
    [entry] = _audits(tenant, "tenant.suspended")
    assert entry.actor == "user:alice"
    assert entry.ip_address == "192.0.2.10"
    assert entry.resource_id == tenant.id
    assert entry.metadata == {"changes": {"status": ["active", "suspended"]}, "reason": "chargeback"}
    assert entry.created_at is not None


def test_suspend_accepts_string_id(tenant: Tenant) -> None:
    assert tenant_suspend(tenant_id=str(tenant.id), actor=STAFF).status == "suspended"


def test_suspend_is_idempotent(tenant: Tenant) -> None:
    tenant_suspend(tenant_id=tenant.id, actor=STAFF)
    again = tenant_suspend(tenant_id=tenant.id, actor=STAFF)
    assert again.status == "suspended"
    assert len(_audits(tenant, "tenant.suspended")) == 1


def test_reactivate_writes_audit(tenant: Tenant) -> None:
    tenant_suspend(tenant_id=tenant.id, actor=STAFF)
    other = Actor(label="service:billing", ip_address="10.1.2.3")
    assert tenant_reactivate(tenant_id=tenant.id, actor=other).status == "active"
    [entry] = _audits(tenant, "tenant.reactivated")
    assert entry.actor == "service:billing"
    assert entry.ip_address == "10.1.2.3"
    assert entry.metadata == {"changes": {"status": ["suspended", "active"]}}


def test_reactivate_active_tenant_is_a_no_op(tenant: Tenant) -> None:
    assert tenant_reactivate(tenant_id=tenant.id, actor=STAFF).status == "active"
    assert _audits(tenant, "tenant.reactivated") == []


@pytest.mark.parametrize("from_status", ["active", "suspended"])
def test_delete_marks_deleted_revokes_devices_and_audits(make_tenant: Callable[..., Tenant], from_status: str) -> None:
    tenant = make_tenant()
    if from_status == "suspended":
        tenant_suspend(tenant_id=tenant.id, actor=STAFF)
    live = Device.objects.create(
        tenant=tenant, device_name="a", platform="ios", public_key_signing="s1", public_key_encryption="e1"
    )
    other_tenant = make_tenant()
    untouched = Device.objects.create(
        tenant=other_tenant, device_name="b", platform="ios", public_key_signing="s2", public_key_encryption="e2"
    )
    result = tenant_delete(tenant_id=tenant.id, actor=STAFF, reason="gdpr request")
    assert result.status == "deleted"
    assert Tenant.objects.filter(pk=tenant.pk).exists()  # the row stays for audit and billing history
    live.refresh_from_db()
    untouched.refresh_from_db()
    assert live.revoked_at is not None
    assert untouched.revoked_at is None
    [entry] = _audits(tenant, "tenant.deleted")
    assert entry.metadata == {"changes": {"status": [from_status, "deleted"]}, "reason": "gdpr request"}
    assert entry.ip_address == "192.0.2.10"


def test_delete_is_idempotent(tenant: Tenant) -> None:
    tenant_delete(tenant_id=tenant.id, actor=STAFF)
    revoked_at = list(tenant.devices.values_list("revoked_at", flat=True))
    assert tenant_delete(tenant_id=tenant.id, actor=STAFF).status == "deleted"
    assert len(_audits(tenant, "tenant.deleted")) == 1
    assert list(tenant.devices.values_list("revoked_at", flat=True)) == revoked_at


@pytest.mark.parametrize(
    "call",
    [
        lambda tid: tenant_suspend(tenant_id=tid, actor=STAFF),
        lambda tid: tenant_reactivate(tenant_id=tid, actor=STAFF),
    ],
    ids=["suspend", "reactivate"],
)
def test_deleted_tenant_cannot_be_suspended_or_reactivated(tenant: Tenant, call: Callable[[object], Tenant]) -> None:
    tenant_delete(tenant_id=tenant.id, actor=STAFF)
    before = AuditLog.objects.count()
    with pytest.raises(Conflict) as info:
        call(tenant.id)
    assert info.value.http_status == 409
    tenant.refresh_from_db()
    assert tenant.status == "deleted"
    assert AuditLog.objects.count() == before


@pytest.mark.parametrize("bad_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", ""])
@pytest.mark.parametrize("service", [tenant_suspend, tenant_reactivate, tenant_delete])
def test_unknown_tenant_is_not_found(bad_id: str, service: Callable[..., Tenant]) -> None:
    with pytest.raises(NotFound):
        service(tenant_id=bad_id, actor=STAFF)
    assert AuditLog.objects.count() == 0
