"""The archive drill: open a bounded random sample of archived tenants' latest archives into scratch and check each
in full (every chunk, the object's SHA-256, the entry count and digest of every key and value against the manifest),
recording the run in ``archival_drills`` (admin, metrics, alerts). Live data is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import F
from django.utils import timezone

from archival import restore
from archival.models import ArchivalJob, ArchiveDrill, DrillStatus
from archival.selectors import completed_archives
from core.errors import PlatformError

log = logging.getLogger(__name__)


def run_drill(*, sample: int | None, report: Callable[[ArchivalJob, str | None], None] | None = None) -> ArchiveDrill:
    """Check ``sample`` archives (all with None); ``report(job, error)`` is called after each. A crash leaves the row
    ``running`` (it never counts as a pass) and the next run starts over."""
    jobs = list(completed_archives(sample=sample))
    drill = ArchiveDrill.objects.create(sample_size=len(jobs))
    for job in jobs:
        error = None
        try:
            restore.drill(job)
        except PlatformError as exc:
            error = exc.message
        ArchiveDrill.objects.filter(pk=drill.pk).update(checked=F("checked") + 1)
        if error is not None:
            drill.failures.append(
                {"tenant_id": str(job.tenant_id), "job_id": str(job.id), "object_key": job.s3_key, "error": error}
            )
            ArchiveDrill.objects.filter(pk=drill.pk).update(failed=len(drill.failures), failures=drill.failures)
            log.error("archive drill: tenant %s archive %s failed: %s", job.tenant_id, job.s3_key, error)
        if report is not None:
            report(job, error)
    drill.refresh_from_db()
    drill.status = DrillStatus.FAILED if drill.failed else DrillStatus.PASSED
    drill.completed_at = timezone.now()
    drill.save(update_fields=["status", "completed_at"])
    return drill
