"""Reads about platform backups and drills (admin, metrics, commands)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from backups.models import PlatformBackup, RestoreDrill, RunStatus


@dataclass(frozen=True)
class BackupHealth:
    last_success_at: float  # Unix time, 0 when none ever succeeded
    last_size_bytes: int
    last_duration_seconds: float
    last_drill_success_at: float
    runs: dict[str, int]
    drills: dict[str, int]


def last_completed_backup() -> PlatformBackup | None:
    return PlatformBackup.objects.filter(status=RunStatus.COMPLETED).order_by("-completed_at").first()


def last_completed_drill() -> RestoreDrill | None:
    return RestoreDrill.objects.filter(status=RunStatus.COMPLETED).order_by("-completed_at").first()


def _by_status(model: type[PlatformBackup] | type[RestoreDrill]) -> dict[str, int]:
    counts = {status.value: 0 for status in RunStatus}
    for status, n in model.objects.order_by().values_list("status").annotate(n=Count("id")):
        counts[status] = n
    return counts


def backup_health() -> BackupHealth:
    backup = last_completed_backup()
    drill = last_completed_drill()
    return BackupHealth(
        last_success_at=backup.completed_at.timestamp() if backup and backup.completed_at else 0.0,
        last_size_bytes=(backup.sealed_bytes or 0) if backup else 0,
        last_duration_seconds=(backup.duration_seconds or 0.0) if backup else 0.0,
        last_drill_success_at=drill.completed_at.timestamp() if drill and drill.completed_at else 0.0,
        runs=_by_status(PlatformBackup),
        drills=_by_status(RestoreDrill),
    )
