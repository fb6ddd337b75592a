"""The management schema on PostgreSQL: every CHECK and unique constraint is enforced by the database itself,
the spike's indexes exist, DB-level cascades work, and the column types are the spike's (UUID, JSONB, INET).

Rows are written with raw `objects.create`/`update()` or SQL, never `full_clean()`, so only the database stands
between a bad row and the table.
"""

import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from archival.models import ArchivalJob
from billing.models import BillingEvent, Subscription
from tenants.models import AuditLog, Device, Tenant, TenantKey, TenantState

pytestmark = pytest.mark.django_db


def assert_rejected(write: Callable[[], Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def raw_tenant(email: str | None = None, **extra: Any) -> Tenant:
    return Tenant.objects.create(email=email or f"m-{uuid.uuid4().hex[:10]}@example.com", tier="B", **extra)


def raw_device(tenant: Tenant, signing: str | None = None, **extra: Any) -> Device:
    return Device.objects.create(
        tenant=tenant,
        device_name="phone",
        platform=extra.pop("platform", "ios"),
        public_key_signing=signing or secrets.token_urlsafe(32),
        public_key_encryption=secrets.token_urlsafe(32),
        **extra,
    )


def raw_key(tenant: Tenant, **extra: Any) -> TenantKey:
    data: dict[str, Any] = {"key_id": f"tk-{secrets.token_hex(8)}", "wrapped_key": b"x" * 40, "master_key_id": "f" * 16}
    return TenantKey.objects.create(tenant=tenant, **(data | extra))


@pytest.fixture
def row() -> Tenant:
    return raw_tenant()


def test_postgres_is_the_backend() -> None:
    assert connection.vendor == "postgresql"


# --- tenants -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [("tier", "D"), ("tier", "a"), ("status", "archived"), ("status", ""), ("security_mode", "cloud")],
)
def test_tenant_checks_reject_bad_values_on_create(field: str, value: str) -> None:
    data = {"email": "x@example.com", "tier": "A", field: value}
    assert_rejected(lambda: Tenant.objects.create(**data))
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("field,value", [("tier", "Z"), ("status", "gone"), ("security_mode", "none")])
def test_tenant_checks_reject_bad_values_on_update(row: Tenant, field: str, value: str) -> None:
    assert_rejected(lambda: Tenant.objects.filter(pk=row.pk).update(**{field: value}))
    row.refresh_from_db()
    assert getattr(row, field) != value


def test_tenant_check_rejects_raw_sql_insert() -> None:
    def insert() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tenants (id, email, tier, status, security_mode) VALUES (%s, %s, %s, %s, %s)",
                [uuid.uuid4(), "sql@example.com", "X", "active", "node_based"],
            )

    assert_rejected(insert)


def test_tenant_email_unique_case_insensitively() -> None:
    raw_tenant("A@x.com")
    assert_rejected(lambda: raw_tenant("a@X.com"))
    assert_rejected(lambda: raw_tenant("A@x.com"))
    assert Tenant.objects.filter(email__iexact="a@x.com").count() == 1


def test_tenant_email_unique_case_insensitively_raw_sql() -> None:
    sql = "INSERT INTO tenants (id, email, tier, status, security_mode) VALUES (%s, %s, 'A', 'active', 'node_based')"
    with connection.cursor() as cursor:
        cursor.execute(sql, [uuid.uuid4(), "A@x.com"])

    def insert() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [uuid.uuid4(), "a@X.com"])

    assert_rejected(insert)


def test_tenant_valid_row_is_accepted_with_db_defaults() -> None:
    tenant = raw_tenant("ok@example.com")
    tenant.refresh_from_db()
    assert tenant.status == "active"
    assert tenant.security_mode == "node_based"
    assert tenant.created_at is not None


# --- devices -----------------------------------------------------------------------------------------------------


def test_device_platform_check(row: Tenant) -> None:
    assert_rejected(lambda: raw_device(row, platform="windows"))
    raw_device(row, platform=None)  # unknown platform is allowed (NULL), as in the spike
    device = raw_device(row, platform="linux")
    assert_rejected(lambda: Device.objects.filter(pk=device.pk).update(platform="symbian"))


def test_device_signing_key_unique(row: Tenant) -> None:
    other = raw_tenant()
    raw_device(row, signing="same-key")
    assert_rejected(lambda: raw_device(row, signing="same-key"))
    assert_rejected(lambda: raw_device(other, signing="same-key"))
    assert Device.objects.filter(public_key_signing="same-key").count() == 1


# --- tenant state ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("state", "frozen"),
        ("state", "HOT"),
        ("generation", 0),
        ("tier_deployment", "tier-d"),
        ("tier_deployment", "A"),
        ("memory_mb", -1),
        ("data_size_mb", -5),
    ],
)
def test_tenant_state_checks(row: Tenant, field: str, value: Any) -> None:
    assert_rejected(lambda: TenantState.objects.create(tenant=row, **{field: value}))
    assert not TenantState.objects.filter(tenant=row).exists()


@pytest.mark.parametrize(
    "field,value",
    [("state", "lukewarm"), ("generation", 0), ("generation", -3), ("tier_deployment", "tier-x"), ("memory_mb", -1)],
)
def test_tenant_state_checks_on_update(row: Tenant, field: str, value: Any) -> None:
    TenantState.objects.create(tenant=row)
    assert_rejected(lambda: TenantState.objects.filter(tenant=row).update(**{field: value}))


def test_tenant_state_valid_row_accepted(row: Tenant) -> None:
    state = TenantState.objects.create(
        tenant=row, state="hot", generation=7, tier_deployment="tier-b", memory_mb=0, data_size_mb=0
    )
    assert state.generation == 7


def test_one_state_row_per_tenant(row: Tenant) -> None:
    TenantState.objects.create(tenant=row)
    assert_rejected(lambda: TenantState.objects.create(tenant=row))


# --- tenant keys -------------------------------------------------------------------------------------------------


def test_one_active_key_per_tenant(row: Tenant) -> None:
    first = raw_key(row)
    assert_rejected(lambda: raw_key(row))
    TenantKey.objects.filter(pk=first.pk).update(retired_at=timezone.now())
    raw_key(row)
    raw_key(row, retired_at=timezone.now())  # any number of retired keys
    assert TenantKey.objects.filter(tenant=row, retired_at__isnull=True).count() == 1
    # un-retiring the old one would make two active keys
    assert_rejected(lambda: TenantKey.objects.filter(pk=first.pk).update(retired_at=None))


def test_key_id_unique(row: Tenant) -> None:
    key = raw_key(row, retired_at=timezone.now())
    assert_rejected(lambda: raw_key(raw_tenant(), key_id=key.key_id))


# --- subscriptions -----------------------------------------------------------------------------------------------


def subscription(tenant: Tenant, **extra: Any) -> Subscription:
    data: dict[str, Any] = {"tier": "B", "status": "active"} | extra
    return Subscription.objects.create(tenant=tenant, **data)


@pytest.mark.parametrize("field,value", [("status", "suspended"), ("status", "ACTIVE"), ("tier", "D"), ("tier", "")])
def test_subscription_checks(row: Tenant, field: str, value: str) -> None:
    assert_rejected(lambda: subscription(row, **{field: value}))
    sub = subscription(row)
    assert_rejected(lambda: Subscription.objects.filter(pk=sub.pk).update(**{field: value}))


def test_subscription_period_ordering(row: Tenant) -> None:
    now = timezone.now()
    assert_rejected(lambda: subscription(row, current_period_start=now, current_period_end=now - timedelta(days=1)))
    subscription(row, current_period_start=now, current_period_end=now)
    subscription(row, current_period_start=now, current_period_end=now + timedelta(days=30))
    subscription(row, current_period_start=None, current_period_end=now)
    subscription(row, current_period_start=now, current_period_end=None)


def test_subscription_stripe_id_unique(row: Tenant) -> None:
    subscription(row, stripe_subscription_id="sub_123")
    assert_rejected(lambda: subscription(raw_tenant(), stripe_subscription_id="sub_123"))
    subscription(row, stripe_subscription_id=None)
    subscription(row, stripe_subscription_id=None)  # many subscriptions without a Stripe id


# --- billing events ----------------------------------------------------------------------------------------------


def event(**extra: Any) -> BillingEvent:
    data: dict[str, Any] = {"event_type": "invoice.paid"} | extra
    return BillingEvent.objects.create(**data)


@pytest.mark.parametrize(
    "field,value",
    [
        ("processing_status", "pending"),
        ("processing_status", ""),
        ("currency", "usd"),
        ("currency", "US"),
        ("currency", "U1D"),
    ],
)
def test_billing_event_checks(field: str, value: str) -> None:
    assert_rejected(lambda: event(**{field: value}))
    ok = event()
    assert_rejected(lambda: BillingEvent.objects.filter(pk=ok.pk).update(**{field: value}))


def test_billing_event_defaults_and_valid_values(row: Tenant) -> None:
    ev = event(tenant=row, currency="EUR", processing_status="failed", amount_cents=500)
    ev = event(stripe_event_id="evt_ok")
    ev.refresh_from_db()
    assert ev.currency == "USD"
    assert ev.processing_status == "received"


def test_billing_event_stripe_event_id_unique() -> None:
    event(stripe_event_id="evt_1")
    assert_rejected(lambda: event(stripe_event_id="evt_1", event_type="invoice.payment_failed"))
    event(stripe_event_id=None)
    event(stripe_event_id=None)


# --- archival jobs -----------------------------------------------------------------------------------------------


def job(tenant: Tenant, **extra: Any) -> ArchivalJob:
    data: dict[str, Any] = {"job_type": "archive", "status": "completed"} | extra
    return ArchivalJob.objects.create(tenant=tenant, **data)


@pytest.mark.parametrize(
    "field,value", [("job_type", "delete"), ("status", "queued"), ("status", "done"), ("data_size_mb", -1)]
)
def test_archival_job_checks(row: Tenant, field: str, value: Any) -> None:
    assert_rejected(lambda: job(row, **{field: value}))
    ok = job(row)
    assert_rejected(lambda: ArchivalJob.objects.filter(pk=ok.pk).update(**{field: value}))


def test_archival_one_active_job_per_tenant(row: Tenant) -> None:
    job(row, status="completed")
    job(row, status="failed")
    job(row, status="completed", data_size_mb=0)
    first = job(row, status="pending")
    assert_rejected(lambda: job(row, status="pending", job_type="restore"))
    assert_rejected(lambda: job(row, status="running"))
    job(raw_tenant(), status="running")  # another tenant may have its own
    ArchivalJob.objects.filter(pk=first.pk).update(status="completed")
    job(row, status="running", job_type="restore")


# --- indexes, cascades, column types -----------------------------------------------------------------------------

SPIKE_INDEXES = {
    "idx_tenants_tier": "tenants",
    "idx_tenants_status": "tenants",
    "idx_tenants_email": "tenants",
    "idx_devices_tenant": "devices",
    "idx_devices_last_seen": "devices",
    "idx_subscriptions_tenant": "subscriptions",
    "idx_subscriptions_status": "subscriptions",
    "idx_subscriptions_stripe": "subscriptions",
    "idx_tenant_states_state": "tenant_states",
    "idx_tenant_states_last_access": "tenant_states",
    "idx_tenant_states_pod": "tenant_states",
    "idx_archival_jobs_tenant": "archival_jobs",
    "idx_archival_jobs_status": "archival_jobs",
    "idx_archival_jobs_created": "archival_jobs",
    "idx_billing_events_tenant": "billing_events",
    "idx_billing_events_type": "billing_events",
    "idx_tenant_metrics_tenant_time": "tenant_metrics",
    "idx_tenant_metrics_name": "tenant_metrics",
    "idx_audit_log_tenant": "audit_log",
    "idx_audit_log_action": "audit_log",
    "idx_audit_log_created": "audit_log",
}


def _indexes() -> dict[str, tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
        return {name: (table, definition) for name, table, definition in cursor.fetchall()}


@pytest.mark.parametrize("name,table", sorted(SPIKE_INDEXES.items()))
def test_spike_index_exists(name: str, table: str) -> None:
    indexes = _indexes()
    assert name in indexes, f"missing index {name}"
    assert indexes[name][0] == table


def test_index_definitions() -> None:
    indexes = _indexes()
    assert "UNIQUE" in indexes["idx_subscriptions_stripe"][1]
    assert "stripe_subscription_id" in indexes["idx_subscriptions_stripe"][1]
    assert "recorded_at DESC" in indexes["idx_tenant_metrics_tenant_time"][1]
    assert "created_at DESC" in indexes["idx_audit_log_created"][1]
    assert "lower((email)::text)" in indexes["tenants_email_ci_unique"][1]


DB_CASCADES = [
    ("devices", "tenant_id"),
    ("tenant_states", "tenant_id"),
    ("tenant_keys", "tenant_id"),
    ("subscriptions", "tenant_id"),
]


@pytest.mark.parametrize("table,column", DB_CASCADES)
def test_foreign_key_cascades_in_database(table: str, column: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.confdeltype, c.confrelid::regclass::text FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND a.attname = %s
            """,
            [table, column],
        )
        rows = cursor.fetchall()
    assert rows == [("c", "tenants")]


def test_raw_sql_delete_cascades_to_dependents(row: Tenant) -> None:
    other = raw_tenant()
    for tenant in (row, other):
        TenantState.objects.create(tenant=tenant)
        raw_key(tenant)
        raw_device(tenant)
        subscription(tenant, stripe_subscription_id=f"sub_{tenant.pk.hex}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tenants WHERE id = %s", [row.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred FK checks would fail here if anything dangled
    for model in (TenantState, TenantKey, Device, Subscription):
        assert not model.objects.filter(tenant_id=row.pk).exists(), model.__name__
        assert model.objects.filter(tenant_id=other.pk).count() == 1, model.__name__


def test_audit_rows_protect_the_tenant_in_database(row: Tenant) -> None:
    AuditLog.objects.create(tenant=row, actor="test", action="x")

    def delete() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM tenants WHERE id = %s", [row.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    assert_rejected(delete)
    assert Tenant.objects.filter(pk=row.pk).exists()


def _column_type(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s",
            [table, column],
        )
        result = cursor.fetchone()
    assert result, f"{table}.{column} missing"
    return str(result[0])


@pytest.mark.parametrize(
    "table,column,expected",
    [
        ("tenants", "id", "uuid"),
        ("devices", "id", "uuid"),
        ("devices", "tenant_id", "uuid"),
        ("tenant_states", "tenant_id", "uuid"),
        ("tenant_keys", "id", "uuid"),
        ("subscriptions", "id", "uuid"),
        ("billing_events", "id", "uuid"),
        ("archival_jobs", "id", "uuid"),
        ("tenant_metrics", "id", "uuid"),
        ("audit_log", "id", "uuid"),
        ("audit_log", "user_id", "uuid"),
        ("audit_log", "resource_id", "uuid"),
        ("audit_log", "metadata", "jsonb"),
        ("billing_events", "metadata", "jsonb"),
        ("archival_jobs", "manifest", "jsonb"),
        ("audit_log", "ip_address", "inet"),
        ("tenant_keys", "wrapped_key", "bytea"),
        ("tenants", "created_at", "timestamp with time zone"),
    ],
)
def test_column_types(table: str, column: str, expected: str) -> None:
    assert _column_type(table, column) == expected


def test_inet_rejects_garbage(row: Tenant) -> None:
    def insert() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_log (id, actor, action, ip_address) VALUES (%s, 'x', 'y', %s)",
                [uuid.uuid4(), "not-an-ip"],
            )

    with pytest.raises(Exception), transaction.atomic():
        insert()
    AuditLog.objects.create(actor="x", action="y", ip_address="2001:db8::1", metadata={"a": [1, 2]})
    assert AuditLog.objects.filter(metadata__a__contains=[2]).exists()


def test_newest_first_lists_have_their_indexes() -> None:
    from django.db import connection

    wanted = {
        "idx_devices_created": "devices",
        "idx_tenant_keys_created": "tenant_keys",
        "idx_tenant_metrics_recorded": "tenant_metrics",
        "idx_billing_events_created": "billing_events",
        "idx_subscriptions_created": "subscriptions",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, tablename FROM pg_indexes WHERE indexname = ANY(%s)", [list(wanted)])
        assert dict(cursor.fetchall()) == wanted
