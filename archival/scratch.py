"""Sweeping the scratch space under ``TENANT_DATA_ROOT/.archival``: a job cleans its own folder on every failure it
sees, but a worker that dies (SIGKILL, OOM, a node lost) cannot, and its folder may hold decrypted tenant data.

A job's folder is removed once the job is no longer pending or running (completed, failed, or gone) and the folder
has not changed for ``older_than``; a re-run of a failed job makes a fresh folder (newer than that), so the sweep
never pulls one from under it. Drill folders (``drill-*``) are removed when older than ``older_than``.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from archival.jobs import SCRATCH_DIR
from archival.models import ACTIVE_JOB_STATUSES, ArchivalJob

log = logging.getLogger(__name__)

DEFAULT_AGE = timedelta(hours=1)


def _job_id(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def sweep_scratch(*, older_than: timedelta = DEFAULT_AGE) -> list[Path]:
    """Remove the scratch folders of finished or abandoned jobs and of old drills; returns what was removed."""
    base = Path(settings.TENANT_DATA_ROOT) / SCRATCH_DIR
    if not base.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    candidates = {}
    for entry in base.iterdir():
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        job_id = _job_id(entry.name)
        if job_id is not None or entry.name.startswith("drill-"):
            candidates[entry] = job_id
    busy = set(
        ArchivalJob.objects.filter(
            pk__in=[j for j in candidates.values() if j], status__in=ACTIVE_JOB_STATUSES
        ).values_list("id", flat=True)
    )
    removed = []
    for entry, job_id in candidates.items():
        if job_id in busy:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.warning("archival: removed scratch %s (its job is finished or gone)", entry)
        removed.append(entry)
    return removed
