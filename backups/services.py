"""Platform backups: take one, keep the right ones, restore one into a scratch database and check it.

`backup_create` records a row (running -> completed/failed), dumps and seals into the backup store, writes the sealed
manifest last, then applies retention. A failure deletes what it uploaded; a crash (the process killed) leaves a
dump without a manifest, which is never restored and which the next run's retention removes.

The restore drill is in `backups.drills`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from archival import objectstore
from backups import dump, keys, pg, store
from backups.models import PlatformBackup, RunStatus
from core import sealed
from core.audit import Actor, audit_write
from core.errors import NotFound, PlatformError

log = logging.getLogger(__name__)
STEP_HOOK: Callable[[str], None] | None = None  # tests inject crashes here
ABANDONED_AFTER = timedelta(hours=6)
BackupFailed = dump.BackupFailed


def run_step_hook(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def live_target() -> pg.PgTarget:
    return pg.target_from_settings(connection.settings_dict)


def backup_create(*, actor: Actor) -> PlatformBackup:
    target = live_target()
    pg.tool("pg_dump")  # fail before recording anything when the client is missing
    key_id, _ = keys.current()
    name = store.new_name(timezone.now())
    backup = PlatformBackup.objects.create(
        name=name,
        actor=actor.label,
        object_key=store.dump_key(name),
        master_key_id=key_id.removeprefix(keys.KEY_ID_PREFIX),
    )
    started = time.monotonic()
    try:
        dumped = dump.dump(
            target, object_key=backup.object_key, zstd_threads=settings.ARCHIVE_ZSTD_THREADS, step=run_step_hook
        )
        manifest = {
            "format": 1,
            "name": name,
            "database": target.dbname,
            "object_key": backup.object_key,
            "created_at": backup.started_at.isoformat() if backup.started_at else None,
            "master_key_id": backup.master_key_id,
            "dump_bytes": dumped.stats.bytes_in,
            "sealed_bytes": dumped.stats.bytes_out,
            "sha256": dumped.stats.sha256,
            "tables": dumped.snapshot.tables,
            "migrations": dumped.snapshot.migrations,
            "server_version": dumped.snapshot.server_version,
            "pg_dump_version": dumped.pg_dump_version,
        }
        store.write_manifest(name, manifest)
        run_step_hook("manifest_written")
    except Exception as exc:
        _discard(name)
        message = failure_reason(exc)
        _finish(backup, RunStatus.FAILED, started, error=message)
        raise BackupFailed(f"backup {name} failed: {message}") from exc
    backup.dump_bytes, backup.sealed_bytes = dumped.stats.bytes_in, dumped.stats.bytes_out
    backup.sha256, backup.manifest = dumped.stats.sha256, {k: v for k, v in manifest.items() if k != "migrations"}
    _finish(backup, RunStatus.COMPLETED, started)
    audit_write(
        actor=actor,
        action="platform.backup_created",
        tenant=None,
        resource_type="platform_backup",
        resource_id=backup.id,
        metadata={"name": name, "sealed_bytes": backup.sealed_bytes, "rows": sum(dumped.snapshot.tables.values())},
    )
    try:
        backups_prune()
    except objectstore.ObjectStoreError as exc:  # the backup itself is complete; the next run prunes again
        log.warning("retention after backup %s failed: %s", name, exc)
    return backup


def failure_reason(exc: Exception) -> str:
    if isinstance(exc, PlatformError):
        return exc.message
    if isinstance(exc, objectstore.ObjectStoreError | sealed.SealedError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _finish(backup: PlatformBackup, status: str, started: float, *, error: str = "") -> None:
    backup.status, backup.error = status, error
    backup.completed_at = timezone.now()
    backup.duration_seconds = round(time.monotonic() - started, 3)
    backup.save()


def _discard(name: str) -> None:
    try:
        store.delete(name)
    except objectstore.ObjectStoreError as exc:  # the next retention pass removes what is left
        log.warning("could not delete the objects of failed backup %s: %s", name, exc)


def backups_prune(*, now: Any = None) -> list[str]:
    """Delete complete backups past retention (keeping the newest BACKUP_KEEP_AT_LEAST whatever their age) and
    unfinished ones no run is still writing; mark abandoned running rows failed. Returns the names deleted."""
    now = now or timezone.now()
    PlatformBackup.objects.filter(status=RunStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER).update(
        status=RunStatus.FAILED, error="abandoned: the process died before it finished", completed_at=now
    )
    running = set(PlatformBackup.objects.filter(status=RunStatus.RUNNING).values_list("name", flat=True))
    stored = store.listing()
    complete = [b for b in stored if b.has_manifest]
    keep = {b.name for b in complete[-settings.BACKUP_KEEP_AT_LEAST :]} if settings.BACKUP_KEEP_AT_LEAST else set()
    cutoff = now - timedelta(days=settings.BACKUP_RETENTION_DAYS)
    doomed = [
        b.name
        for b in stored
        if b.name not in keep and b.name not in running and (not b.has_manifest or b.created_at < cutoff)
    ]
    for name in doomed:
        store.delete(name)
    if doomed:
        PlatformBackup.objects.filter(name__in=doomed, pruned_at__isnull=True).update(pruned_at=now)
    return doomed


def backup_names() -> list[str]:
    """Complete backups in the store, oldest first."""
    return [b.name for b in store.complete()]


def backup_resolve(name: str | None) -> str:
    """The named backup if it is complete, else the newest complete one."""
    complete = backup_names()
    if name is None:
        if not complete:
            raise NotFound("no complete platform backup in the backup store")
        return complete[-1]
    if name not in complete:
        raise NotFound(f"backup {name} is not in the backup store (or has no manifest)")
    return name
