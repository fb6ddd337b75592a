"""Tenants, devices, runtime state, data keys, metrics snapshots and the audit log.

Table names, CHECK constraints and indexes follow the spike's "Management Database Schema (Complete)"; the additions
(generation, tenant keys, revoked devices, case-insensitive emails) are described in docs/decisions.md.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Now


class Tier(models.TextChoices):
    A = "A", "A (premium)"
    B = "B", "B (standard)"
    C = "C", "C (free)"


class TenantStatus(models.TextChoices):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class SecurityMode(models.TextChoices):
    NODE_BASED = "node_based"
    MOBILE_ONLY = "mobile_only"


class DevicePlatform(models.TextChoices):
    IOS = "ios"
    ANDROID = "android"
    MACOS = "macos"
    LINUX = "linux"
    WEB = "web"


class State(models.TextChoices):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"
    ARCHIVED = "archived"
    RESTORING = "restoring"


def _in(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=255)
    tier = models.CharField(max_length=10, choices=Tier.choices)
    status = models.CharField(max_length=20, choices=TenantStatus.choices, default=TenantStatus.ACTIVE)
    security_mode = models.CharField(max_length=20, choices=SecurityMode.choices, default=SecurityMode.NODE_BASED)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)

    class Meta:
        db_table = "tenants"
        constraints = [
            models.CheckConstraint(condition=_in("tier", Tier), name="tenants_valid_tier"),
            models.CheckConstraint(condition=_in("status", TenantStatus), name="tenants_valid_status"),
            models.CheckConstraint(condition=_in("security_mode", SecurityMode), name="valid_security_mode"),
            models.UniqueConstraint(Lower("email"), name="tenants_email_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["tier"], name="idx_tenants_tier"),
            models.Index(fields=["status"], name="idx_tenants_status"),
            # Emails are stored lower-cased; pattern ops let `LIKE 'prefix%'` use the index on PostgreSQL.
            models.Index(fields=["email"], name="idx_tenants_email", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["created_at", "id"], name="idx_tenants_created"),
        ]

    def __str__(self) -> str:
        return self.email


class Device(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="devices", db_index=False)
    device_name = models.CharField(max_length=255)
    platform = models.CharField(max_length=50, choices=DevicePlatform.choices, null=True, blank=True)
    public_key_signing = models.TextField(help_text="Ed25519 public key, 32 bytes, base64url")
    public_key_encryption = models.TextField(help_text="X25519 public key, 32 bytes, base64url")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "devices"
        constraints = [
            models.CheckConstraint(
                condition=_in("platform", DevicePlatform) | Q(platform__isnull=True), name="devices_valid_platform"
            ),
            models.UniqueConstraint(fields=["public_key_signing"], name="devices_signing_key_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant"], name="idx_devices_tenant"),
            models.Index(fields=["last_seen_at"], name="idx_devices_last_seen"),
            models.Index(fields=["created_at", "id"], name="idx_devices_created"),
        ]

    def __str__(self) -> str:
        return f"{self.device_name} ({self.platform or 'unknown'})"


class TenantState(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="state")
    state = models.CharField(max_length=10, choices=State.choices, default=State.COLD)
    generation = models.PositiveBigIntegerField(default=1)
    pod_id = models.CharField(max_length=255, null=True, blank=True)
    tier_deployment = models.CharField(max_length=10, null=True, blank=True)
    last_access_at = models.DateTimeField(db_default=Now())
    last_eviction_at = models.DateTimeField(null=True, blank=True)
    memory_mb = models.IntegerField(null=True, blank=True)
    data_size_mb = models.IntegerField(null=True, blank=True)
    rocksdb_location = models.TextField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)

    class Meta:
        db_table = "tenant_states"
        constraints = [
            models.CheckConstraint(condition=_in("state", State), name="tenant_states_valid_state"),
            models.CheckConstraint(condition=Q(generation__gte=1), name="tenant_states_generation_positive"),
            models.CheckConstraint(
                condition=Q(tier_deployment__in=["tier-a", "tier-b", "tier-c"]) | Q(tier_deployment__isnull=True),
                name="tenant_states_valid_deployment",
            ),
            models.CheckConstraint(
                condition=(Q(memory_mb__gte=0) | Q(memory_mb__isnull=True))
                & (Q(data_size_mb__gte=0) | Q(data_size_mb__isnull=True)),
                name="tenant_states_sizes_non_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["state"], name="idx_tenant_states_state"),
            models.Index(fields=["last_access_at"], name="idx_tenant_states_last_access"),
            models.Index(fields=["pod_id"], name="idx_tenant_states_pod"),
            models.Index(fields=["state", "last_access_at"], name="idx_tenant_states_idle"),
        ]

    def __str__(self) -> str:
        return f"{self.state} (generation {self.generation})"


class TenantKey(models.Model):
    """A tenant's 256-bit data key, stored only wrapped by the platform master key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="keys")
    key_id = models.CharField(max_length=64, unique=True)
    wrapped_key = models.BinaryField()
    master_key_id = models.CharField(max_length=32, help_text="fingerprint of the master key that wrapped it")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tenant_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(retired_at__isnull=True), name="tenant_keys_one_active_per_tenant"
            ),
        ]
        indexes = [models.Index(fields=["created_at", "id"], name="idx_tenant_keys_created")]

    def __str__(self) -> str:
        return self.key_id


class TenantMetric(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="metrics", db_index=False)
    metric_name = models.CharField(max_length=100)
    metric_value = models.DecimalField(max_digits=30, decimal_places=6)
    recorded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "tenant_metrics"
        indexes = [
            models.Index(fields=["tenant", "-recorded_at"], name="idx_tenant_metrics_tenant_time"),
            models.Index(fields=["metric_name"], name="idx_tenant_metrics_name"),
            models.Index(fields=["recorded_at", "id"], name="idx_tenant_metrics_recorded"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_name}={self.metric_value}"


class AuditLog(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_entries", db_index=False
    )
    user_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=255, help_text="who: user:<username>, service:<name>, task:<name>, cli:<user>")
    action = models.CharField(max_length=100)
    resource_type = models.CharField(max_length=50, null=True, blank=True)
    resource_id = models.UUIDField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "audit_log"
        indexes = [
            models.Index(fields=["tenant"], name="idx_audit_log_tenant"),
            models.Index(fields=["action"], name="idx_audit_log_action"),
            models.Index(fields=["-created_at"], name="idx_audit_log_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"
