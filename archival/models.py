"""Archival jobs (spike schema plus manifest, attempts and one active job per tenant) and archive drills."""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from tenants.models import Tenant


class JobType(models.TextChoices):
    ARCHIVE = "archive"
    RESTORE = "restore"
    BACKUP = "backup"


class JobStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


ACTIVE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)


class ArchivalJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="archival_jobs", db_index=False)
    job_type = models.CharField(max_length=50, choices=JobType.choices)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    s3_bucket = models.CharField(max_length=255, null=True, blank=True)
    s3_key = models.TextField(null=True, blank=True)
    data_size_mb = models.IntegerField(null=True, blank=True)
    compression = models.CharField(max_length=20, default="zstd", db_default="zstd")
    encryption_mode = models.CharField(max_length=20, default="tenant_key", db_default="tenant_key")
    manifest = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error_message = models.TextField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "archival_jobs"
        constraints = [
            models.CheckConstraint(condition=Q(job_type__in=JobType.values), name="archival_jobs_valid_type"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="archival_jobs_valid_status"),
            models.CheckConstraint(
                condition=Q(data_size_mb__gte=0) | Q(data_size_mb__isnull=True), name="archival_jobs_size_non_negative"
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status__in=ACTIVE_JOB_STATUSES),
                name="archival_jobs_one_active_per_tenant",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant"], name="idx_archival_jobs_tenant"),
            models.Index(fields=["status"], name="idx_archival_jobs_status"),
            models.Index(fields=["created_at"], name="idx_archival_jobs_created"),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} {self.status}"


class DrillStatus(models.TextChoices):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class ArchiveDrill(models.Model):
    """One run of the archive drill: a sample of archives opened into scratch and checked in full."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=DrillStatus.choices, default=DrillStatus.RUNNING)
    sample_size = models.PositiveIntegerField(default=0)
    checked = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True)  # [{"tenant_id", "job_id", "object_key", "error"}]
    started_at = models.DateTimeField(db_default=Now(), editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "archival_drills"
        indexes = [models.Index(fields=["-started_at"], name="idx_archival_drills_started")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DrillStatus.values), name="archival_drills_valid_status")
        ]

    def __str__(self) -> str:
        return f"drill {self.status} ({self.checked - self.failed}/{self.checked})"
