"""Records of platform backups and restore drills (the objects themselves are in the backup store)."""

import uuid

from django.db import models
from django.db.models.functions import Now


class RunStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class PlatformBackup(models.Model):
    """One run of `backup_platform_db`: a sealed `pg_dump -Fc` of the management database and its sealed manifest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, unique=True, help_text="object name stem, UTC time first so names sort")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    actor = models.CharField(max_length=255)
    object_key = models.CharField(max_length=255)
    master_key_id = models.CharField(max_length=32, help_text="fingerprint of the master key the backup key is from")
    dump_bytes = models.BigIntegerField(null=True, blank=True, help_text="pg_dump output, before sealing")
    sealed_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    duration_seconds = models.FloatField(null=True, blank=True)
    manifest = models.JSONField(default=dict, blank=True, help_text="row counts, migrations, versions")
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(db_default=Now(), editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    pruned_at = models.DateTimeField(null=True, blank=True, help_text="when retention deleted its objects")

    class Meta:
        db_table = "platform_backups"
        ordering = ("-started_at",)
        indexes = [models.Index(fields=["status", "-completed_at"], name="idx_platform_backups_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in RunStatus]), name="platform_backups_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RestoreDrill(models.Model):
    """One restore of a backup into a scratch database, and what its checks found."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    backup_name = models.CharField(max_length=64)
    target = models.CharField(max_length=255, help_text="the database restored into (no password)")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    actor = models.CharField(max_length=255)
    restore_seconds = models.FloatField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(db_default=Now(), editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "platform_restore_drills"
        ordering = ("-started_at",)
        indexes = [models.Index(fields=["status", "-completed_at"], name="idx_restore_drills_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in RunStatus]), name="restore_drills_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"drill of {self.backup_name}"
