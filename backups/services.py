"""Platform backups: take one, keep the right ones, restore one into a scratch database and check it.

`backup_create` records a row (running -> completed/failed), dumps and seals into the backup store, writes the sealed
manifest last, then applies retention. A failure deletes what it uploaded; a crash (the process killed) leaves a
dump without a manifest, which is never restored and which the next run's retention removes.

`restore_drill_run` restores the newest complete backup (or a named one) into an empty database, runs
`backups.checks`, and records the outcome; with ``scratch=True`` it creates the database first and drops it after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from archival import objectstore, sealed
from backups import checks, dump, keys, pg, store
from backups.models import PlatformBackup, RestoreDrill, RunStatus
from tenants.audit import Actor, audit_write
from tenants.errors import InvalidInput, NotFound, PlatformError

log = logging.getLogger(__name__)
STEP_HOOK: Callable[[str], None] | None = None  # tests inject crashes here
ABANDONED_AFTER = timedelta(hours=6)
BackupFailed = dump.BackupFailed


class DrillFailed(PlatformError):
    code = "drill_failed"


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def _live_target() -> pg.PgTarget:
    return pg.target_from_settings(connection.settings_dict)


def backup_create(*, actor: Actor) -> PlatformBackup:
    target = _live_target()
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
        dumped = dump.dump(target, object_key=backup.object_key, zstd_threads=settings.ARCHIVE_ZSTD_THREADS, step=_step)
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
        _step("manifest_written")
    except Exception as exc:
        _discard(name)
        message = _reason(exc)
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
    backups_prune()
    return backup


def _reason(exc: Exception) -> str:
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


def restore_drill_run(
    *,
    into_url: str,
    actor: Actor,
    backup_name: str | None = None,
    sample: int = 20,
    scratch: bool = False,
    record: bool = True,
) -> RestoreDrill:
    """Restore a backup into the database at ``into_url`` and check it. DrillFailed when a check fails."""
    target = pg.target_from_url(into_url)
    if "postgresql" in connection.settings_dict["ENGINE"] and target.same_database(_live_target()):
        raise InvalidInput("refusing to restore into the live management database")
    name = backup_resolve(backup_name)
    drill = RestoreDrill(backup_name=name, target=target.describe(), actor=actor.label)
    if record:
        drill.save()
    started = time.monotonic()
    try:
        manifest = store.read_manifest(name)
        if scratch:
            pg.drop_database(target)
            pg.create_database(target)
        _require_empty(target)
        opened = dump.restore(target, object_key=store.dump_key(name))
        drill.restore_seconds = round(time.monotonic() - started, 3)
        _step("restored")
        if opened.sha256 != manifest["sha256"]:
            raise DrillFailed(f"backup {name}: the dump object's SHA-256 differs from its manifest")
        with pg.connect(target, autocommit=True) as conn:
            drill.checks = checks.run_all(conn, manifest, sample=sample)
        if not drill.checks["ok"]:
            raise DrillFailed(f"backup {name} restored but failed checks: {_failed_checks(drill.checks)}")
    except (PlatformError, sealed.SealedError, objectstore.ObjectStoreError, DatabaseError, psycopg.Error) as exc:
        message = _reason(exc)
        _finish_drill(drill, RunStatus.FAILED, started, record=record, error=message)
        raise (
            exc if isinstance(exc, DrillFailed) else DrillFailed(f"restore drill of {name} failed: {message}")
        ) from exc
    finally:
        if scratch:
            _drop_quietly(target)
    _finish_drill(drill, RunStatus.COMPLETED, started, record=record)
    return drill


def drill_database_url() -> str:
    """Where the scheduled drill restores: BACKUP_DRILL_DATABASE_URL, or BACKUP_DRILL_DATABASE on the live server."""
    if settings.BACKUP_DRILL_DATABASE_URL:
        return str(settings.BACKUP_DRILL_DATABASE_URL)
    if settings.BACKUP_DRILL_DATABASE:
        return _live_target().with_database(settings.BACKUP_DRILL_DATABASE).url()
    return ""


def _require_empty(target: pg.PgTarget) -> None:
    with pg.connect(target, autocommit=True) as conn:
        tables = pg.user_tables(conn)
    if tables:
        raise InvalidInput(f"database {target.dbname} is not empty ({len(tables)} tables); restore into a fresh one")


def _failed_checks(results: dict[str, Any]) -> str:
    parts = []
    for name, result in results.items():
        if isinstance(result, dict) and not result["ok"]:
            detail = result.get("failures") or result.get("missing") or result.get("mismatched") or ""
            parts.append(f"{name} {str(detail)[:200]}")
    return "; ".join(parts)


def _finish_drill(drill: RestoreDrill, status: str, started: float, *, record: bool, error: str = "") -> None:
    drill.status, drill.error = status, error
    drill.completed_at = timezone.now()
    drill.duration_seconds = round(time.monotonic() - started, 3)
    if record:
        drill.save()


def _drop_quietly(target: pg.PgTarget) -> None:
    try:
        pg.drop_database(target)
    except psycopg.Error as exc:
        log.warning("could not drop the drill database %s: %s", target.dbname, exc)
