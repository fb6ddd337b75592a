"""Tier moves: one row per requested move of a tenant from one tier to another (issue 13).

``finished_at`` is null exactly while a move is active; the partial unique index on it is the "one move at a time per
tenant" rule, and the gateway's route lookup reads it (a tenant with an unfinished move is held on the cold path).
"""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from tenants.models import Tenant, Tier


class MoveStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    ROLLING_BACK = "rolling_back"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"


ACTIVE_STATUSES = (MoveStatus.PENDING, MoveStatus.RUNNING, MoveStatus.ROLLING_BACK)


class Step(models.TextChoices):
    """The step a move has completed (recorded before the next one starts)."""

    REQUESTED = "requested"
    FENCED = "fenced"
    EVICTED = "evicted"
    COPIED = "copied"
    SWITCHED = "switched"
    WARMED = "warmed"
    CLEANED = "cleaned"
    NOTIFIED = "notified"
    NOOP = "noop"


class Move(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="moves", db_index=False)
    from_tier = models.CharField(max_length=10, choices=Tier.choices)
    to_tier = models.CharField(max_length=10, choices=Tier.choices)
    reason = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=255, help_text="the actor label: user:<name>, service:<name>, cli:…")
    status = models.CharField(max_length=20, choices=MoveStatus.choices, default=MoveStatus.PENDING)
    step = models.CharField(max_length=20, choices=Step.choices, default=Step.REQUESTED)
    failed_step = models.CharField(max_length=20, blank=True, default="")
    error = models.TextField(blank=True, default="")
    old_generation = models.PositiveBigIntegerField(null=True, blank=True)
    new_generation = models.PositiveBigIntegerField(null=True, blank=True)
    old_pod_id = models.CharField(max_length=255, blank=True, default="")
    new_pod_id = models.CharField(max_length=255, blank=True, default="")
    from_state = models.CharField(max_length=10, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now(), auto_now=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "tenant_moves"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MoveStatus.values), name="tenant_moves_valid_status"),
            models.CheckConstraint(condition=Q(step__in=Step.values), name="tenant_moves_valid_step"),
            models.CheckConstraint(condition=Q(from_tier__in=Tier.values), name="tenant_moves_valid_from"),
            models.CheckConstraint(condition=Q(to_tier__in=Tier.values), name="tenant_moves_valid_to"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True, status__in=ACTIVE_STATUSES)
                | Q(finished_at__isnull=False, status__in=[MoveStatus.COMPLETED, MoveStatus.ROLLED_BACK]),
                name="tenant_moves_finished_iff_final",
            ),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(finished_at__isnull=True), name="tenant_moves_one_active_per_tenant"
            ),
        ]
        indexes = [
            # Newest first with a tie-breaker, like the other admin lists (keyset pagination at 1M rows).
            models.Index(fields=["created_at", "id"], name="idx_tenant_moves_created"),
            models.Index(fields=["tenant", "-created_at"], name="idx_tenant_moves_tenant"),
            models.Index(fields=["status", "-created_at"], name="idx_tenant_moves_status"),
            models.Index(fields=["to_tier", "-created_at"], name="idx_tenant_moves_to_tier"),
            models.Index(fields=["from_tier", "-created_at"], name="idx_tenant_moves_from_tier"),
            models.Index(fields=["updated_at"], condition=Q(finished_at__isnull=True), name="idx_tenant_moves_open"),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier} → {self.to_tier} ({self.status})"

    @property
    def active(self) -> bool:
        return self.finished_at is None
