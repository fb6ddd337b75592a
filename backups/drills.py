"""The restore drill: restore a backup into an empty database, check it, record the outcome.

`restore_drill_run` restores the newest complete backup (or a named one) into the database at ``into_url`` (it must be
empty, and never the live one), runs `backups.checks`, and records a `RestoreDrill` (unless ``record=False``, for a
real restore while the management database is the one lost); with ``scratch=True`` it creates the database first and
drops it afterwards, whatever happens (the weekly drill); such a database must have "drill" in its name. Without
``scratch`` nothing is ever dropped, and a target that is not empty (the live database never is) is refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from archival import objectstore
from backups import checks, dump, pg, store
from backups.models import RestoreDrill, RunStatus
from backups.services import backup_resolve, failure_reason, live_target, run_step_hook
from core import sealed
from core.audit import Actor
from core.errors import InvalidInput, PlatformError

log = logging.getLogger(__name__)


class DrillFailed(PlatformError):
    code = "drill_failed"


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
    if "postgresql" in connection.settings_dict["ENGINE"] and target.same_database(live_target()):
        raise InvalidInput("refusing to restore into the live management database")
    if scratch and "drill" not in target.dbname:  # a scratch drill drops its database before and after
        raise InvalidInput(f"a scratch drill database must have 'drill' in its name, not {target.dbname!r}")
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
        run_step_hook("restored")
        if opened.sha256 != manifest["sha256"]:
            raise DrillFailed(f"backup {name}: the dump object's SHA-256 differs from its manifest")
        with pg.connect(target, autocommit=True) as conn:
            drill.checks = checks.run_all(conn, manifest, sample=sample)
        if not drill.checks["ok"]:
            raise DrillFailed(f"backup {name} restored but failed checks: {_failed_checks(drill.checks)}")
    except (PlatformError, sealed.SealedError, objectstore.ObjectStoreError, DatabaseError, psycopg.Error) as exc:
        message = failure_reason(exc)
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
        return live_target().with_database(settings.BACKUP_DRILL_DATABASE).url()
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
