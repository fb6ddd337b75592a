"""Retention: superseded archives go after the retention period, never the newest; a tenant deleted for good loses
its keys first (crypto-shredding), then its objects. The bucket's lifecycle rule is applied and read back."""

import io
import json
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from archival import objectstore, retention
from archival.models import ArchivalJob, JobStatus, JobType
from archival.tests.conftest import s3_client
from core import sealed
from core.audit import Actor
from tenants.keys import tenant_data_key
from tenants.models import AuditLog, Tenant, TenantKey
from tenants.services import tenant_delete

ACTOR = Actor.system("test:retention")


def _archive(tenant: Tenant, days_ago: int) -> ArchivalJob:
    """A completed archive job whose sealed object is in the store, completed ``days_ago``."""
    key_id, key = tenant_data_key(tenant_id=tenant.id)
    job = ArchivalJob.objects.create(tenant=tenant, job_type=JobType.ARCHIVE, status=JobStatus.COMPLETED)
    object_key = objectstore.archive_key(tenant.id, job.id)
    blob = sealed.seal_bytes(data=b"tar", tenant_id=tenant.id, kind=sealed.KIND_ARCHIVE, key_id=key_id, key=key)
    objectstore.upload(object_key, io.BytesIO(blob))
    job.s3_key = object_key
    job.manifest = {"object_key": object_key, "key_id": key_id}
    job.completed_at = timezone.now() - timedelta(days=days_ago)
    job.save()
    return job


def test_superseded_archives_go_after_retention_never_the_newest(db, object_store, make_tenant, settings) -> None:
    settings.ARCHIVE_RETENTION_DAYS = 30
    tenant, alone = make_tenant(), make_tenant()
    oldest, older, newest = _archive(tenant, 90), _archive(tenant, 45), _archive(tenant, 10)
    only = _archive(alone, 400)  # old, but its tenant's newest: kept

    pruned = retention.prune_archives()

    # oldest was superseded 45 days ago (> 30): gone; older was superseded 10 days ago: kept; newest never goes.
    assert pruned.archives == [oldest.s3_key]
    assert not objectstore.exists(oldest.s3_key)
    for job in (older, newest, only):
        assert objectstore.exists(job.s3_key)
    oldest.refresh_from_db()
    assert "pruned_at" in oldest.manifest and oldest.status == JobStatus.COMPLETED  # the row stays: history
    assert retention.prune_archives().archives == []  # nothing twice


def test_a_tenant_deleted_for_good_is_crypto_shredded(db, object_store, make_tenant, settings) -> None:
    settings.ARCHIVE_RETENTION_DAYS = 30
    gone, recent = make_tenant(), make_tenant()
    jobs = [_archive(gone, 50), _archive(gone, 40)]
    objectstore.upload(objectstore.context_key(gone.id), io.BytesIO(b"context"))
    _archive(recent, 50)
    for tenant in (gone, recent):
        tenant_delete(tenant_id=tenant.id, actor=ACTOR)
    Tenant.objects.filter(pk=gone.id).update(updated_at=timezone.now() - timedelta(days=31))

    pruned = retention.prune_archives()

    assert pruned.shredded == [gone.id]
    assert not TenantKey.objects.filter(tenant=gone).exists()
    assert AuditLog.objects.filter(tenant=gone, action="tenant.keys_shredded").exists()
    assert objectstore.list_keys(f"tenants/{gone.id}/") == []
    assert sorted(pruned.objects) == sorted([str(j.s3_key) for j in jobs] + [objectstore.context_key(gone.id)])
    assert TenantKey.objects.filter(tenant=recent).exists()  # deleted 0 days ago: still within the period
    assert objectstore.list_keys(f"tenants/{recent.id}/") != []


def test_keys_go_first_even_when_the_store_is_down(db, s3_store, make_tenant, settings) -> None:
    from archival.tests.conftest import s3_storage_config

    settings.ARCHIVE_RETENTION_DAYS = 30
    tenant = make_tenant()
    job = _archive(tenant, 50)
    tenant_delete(tenant_id=tenant.id, actor=ACTOR)
    Tenant.objects.filter(pk=tenant.id).update(updated_at=timezone.now() - timedelta(days=31))
    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store, "http://127.0.0.1:9")}
    pruned = retention.prune_archives()
    assert pruned.shredded == [tenant.id] and pruned.objects == []
    assert not TenantKey.objects.filter(tenant=tenant).exists()  # unreadable from now on, wherever copies are
    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_store)}
    assert objectstore.exists(job.s3_key)
    assert retention.prune_archives().objects == [job.s3_key]  # the next run finishes
    assert not objectstore.exists(job.s3_key)


def test_bucket_lifecycle_rule_is_applied_to_s3_and_read_back(db, s3_store, settings) -> None:
    from archival.tests.conftest import s3_storage_config

    settings.STORAGES = {**settings.STORAGES, "backups": s3_storage_config(s3_store)}
    out = StringIO()
    call_command("apply_bucket_lifecycle", stdout=out)
    assert "objects: lifecycle rule applied and read back" in out.getvalue()
    assert "backups: lifecycle rule applied and read back" in out.getvalue()
    rules = s3_client().get_bucket_lifecycle_configuration(Bucket=s3_store)["Rules"]
    assert rules[0]["ID"] == "abort-incomplete-multipart-uploads"
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_lifecycle_file_is_valid_json() -> None:
    from archival.management.commands.apply_bucket_lifecycle import RULES

    assert json.loads(RULES.read_text())["Rules"][0]["Status"] == "Enabled"
