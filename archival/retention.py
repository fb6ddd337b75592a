"""Retention of archive objects, and crypto-shredding of tenants deleted for good.

- An archive superseded by a newer completed (verified) archive of the same tenant has its object deleted once the
  newer one is ``ARCHIVE_RETENTION_DAYS`` old; the newest completed archive of a tenant is never deleted. Job rows
  stay (history, metrics); the manifest records ``pruned_at``.
- A tenant deleted (status ``deleted``) for longer than ``ARCHIVE_RETENTION_DAYS`` loses its data keys first (one
  transaction, audited): from then on every object sealed for it is unreadable wherever a copy survives. Its objects
  (archives, context blob) are deleted after that; if the store fails, the next run deletes what is left.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from archival import objectstore
from archival.jobs import ARCHIVE_ACTOR
from archival.models import ArchivalJob, JobStatus, JobType
from core.audit import audit_write
from tenants.models import Tenant, TenantKey, TenantStatus

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    archives: list[str] = field(default_factory=list)  # object keys deleted as superseded
    shredded: list[uuid.UUID] = field(default_factory=list)  # tenants whose keys were destroyed this run
    objects: list[str] = field(default_factory=list)  # object keys of deleted tenants removed


def _live_archives() -> Q:
    return Q(job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED) & ~Q(manifest__has_key="pruned_at")


def _mark_pruned(job: ArchivalJob, now: datetime) -> None:
    job.manifest["pruned_at"] = now.isoformat()
    job.save(update_fields=["manifest"])


def prune_archives(*, now: datetime | None = None) -> Pruned:
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ARCHIVE_RETENTION_DAYS)
    out = Pruned()
    _prune_superseded(cutoff, now, out)
    _shred_deleted(cutoff, now, out)
    return out


def _prune_superseded(cutoff: datetime, now: datetime, out: Pruned) -> None:
    jobs = ArchivalJob.objects.filter(_live_archives()).exclude(tenant__status=TenantStatus.DELETED)
    newer: ArchivalJob | None = None
    for job in jobs.order_by("tenant_id", "-completed_at").iterator():
        if newer is None or newer.tenant_id != job.tenant_id:
            newer = job  # the tenant's newest completed archive: never deleted
            continue
        if newer.completed_at is not None and newer.completed_at < cutoff and job.s3_key:
            try:
                objectstore.delete(job.s3_key)
            except objectstore.ObjectStoreError as exc:
                log.warning("retention: %s not deleted (next run retries): %s", job.s3_key, exc)
            else:
                _mark_pruned(job, now)
                out.archives.append(job.s3_key)
        newer = job


def _shred_deleted(cutoff: datetime, now: datetime, out: Pruned) -> None:
    due = Tenant.objects.filter(status=TenantStatus.DELETED, updated_at__lt=cutoff).filter(
        Q(keys__isnull=False) | Q(archival_jobs__in=ArchivalJob.objects.filter(_live_archives()))
    )
    for tenant in due.distinct().iterator():
        with transaction.atomic():
            removed, _ = TenantKey.objects.filter(tenant=tenant).delete()
            if removed:
                audit_write(
                    actor=ARCHIVE_ACTOR,
                    action="tenant.keys_shredded",
                    tenant=tenant,
                    resource_type="tenant",
                    resource_id=tenant.id,
                    metadata={"keys": removed},
                )
                out.shredded.append(tenant.id)
        try:
            keys = objectstore.list_keys(f"tenants/{tenant.id}/")
            for key in keys:
                objectstore.delete(key)
        except objectstore.ObjectStoreError as exc:
            log.warning(
                "retention: objects of deleted tenant %s not all deleted (next run retries): %s", tenant.id, exc
            )
            continue
        out.objects.extend(keys)
        for job in ArchivalJob.objects.filter(_live_archives(), tenant=tenant):
            _mark_pruned(job, now)
