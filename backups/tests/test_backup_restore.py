"""The backup and the restore drill end to end on the real PostgreSQL (scratch databases) and the real S3."""

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from archival import objectstore
from archival import services as archival_services
from archival.tests.conftest import SimulatedCrash, s3_client
from backups import drills, pg, services, store, tasks
from backups.models import PlatformBackup, RestoreDrill, RunStatus
from core.audit import Actor
from core.errors import InvalidInput
from tenants.keys import tenant_data_key
from tenants.models import AuditLog, Tenant, TenantKey

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = Actor.system("test:backups")


def archived(tenant, rocks_tenant):
    rocks_tenant(tenant, 50)
    job = archival_services.archive_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    return archival_services.archive_run(job_id=job.id)


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute(query).fetchall()


def test_backup_then_restore_drill_restores_every_row_and_opens_archives(
    backup_store, data_root, make_tenant, rocks_tenant, scratch_db, capsys
) -> None:
    tenants = [make_tenant() for _ in range(5)]
    for tenant in tenants:
        tenant_data_key(tenant_id=tenant.id)
    archived(tenants[0], rocks_tenant)
    archived(tenants[1], rocks_tenant)

    call_command("backup_platform_db")
    backup = PlatformBackup.objects.get()
    assert backup.status == RunStatus.COMPLETED, backup.error
    assert backup.manifest["tables"]["tenants"] == 5 and backup.manifest["tables"]["tenant_keys"] == 5
    assert backup.sealed_bytes and backup.dump_bytes and backup.duration_seconds is not None
    keys = {o["Key"] for o in s3_client().list_objects_v2(Bucket=backup_store, Prefix=store.PREFIX)["Contents"]}
    assert keys == {store.dump_key(backup.name), store.manifest_key(backup.name)}
    dump = s3_client().get_object(Bucket=backup_store, Key=store.dump_key(backup.name))["Body"].read()
    assert dump.startswith(b"PRCLSEAL") and b"PGDMP" not in dump[:4096]  # sealed: no pg_dump header in the clear
    assert AuditLog.objects.filter(action="platform.backup_created").count() == 1

    url = scratch_db()
    call_command("restore_platform_db", into=url, sample=10)
    out = capsys.readouterr().out
    assert f"restored {backup.name}" in out and "checks passed" in out
    drill = RestoreDrill.objects.get()
    assert drill.status == RunStatus.COMPLETED, drill.error
    assert drill.checks["row_counts"]["ok"] and drill.checks["migrations"]["ok"]
    assert drill.checks["tenant_keys"]["sampled"] == 5
    assert drill.checks["archives"]["sampled"] == 2 and drill.checks["archives"]["ok"]
    restored = rows(url, "SELECT id, email FROM tenants ORDER BY id")
    assert restored == sorted((t.id, t.email) for t in tenants)
    wrapped = rows(url, "SELECT key_id, wrapped_key FROM tenant_keys ORDER BY key_id")
    assert wrapped == sorted((k.key_id, bytes(k.wrapped_key)) for k in TenantKey.objects.all())


def test_restore_refuses_a_database_that_is_not_empty_and_the_live_one(backup_store, scratch_db, make_tenant) -> None:
    make_tenant()
    services.backup_create(actor=ACTOR)
    url = scratch_db()
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (id int)")
        conn.execute("INSERT INTO precious VALUES (1)")
    with pytest.raises(CommandError, match="is not empty"):
        call_command("restore_platform_db", into=url)
    assert rows(url, "SELECT id FROM precious") == [(1,)]
    from django.db import connection

    live = connection.settings_dict
    live_url = f"postgres://{live['USER']}@{live['HOST'] or 'localhost'}:{live['PORT'] or 5432}/{live['NAME']}"
    with pytest.raises(CommandError, match="live management database"):
        call_command("restore_platform_db", into=live_url)
    with pytest.raises(CommandError, match="not a PostgreSQL database URL"):
        call_command("restore_platform_db", into="sqlite:///tmp/x.sqlite3")
    assert RestoreDrill.objects.filter(status=RunStatus.FAILED).count() == 1


def test_a_tampered_backup_fails_the_drill_and_leaves_the_target_empty(backup_store, scratch_db, make_tenant) -> None:
    make_tenant()
    backup = services.backup_create(actor=ACTOR)
    client = s3_client()
    key = store.dump_key(backup.name)
    blob = bytearray(client.get_object(Bucket=backup_store, Key=key)["Body"].read())
    blob[len(blob) // 2] ^= 0x01
    client.put_object(Bucket=backup_store, Key=key, Body=bytes(blob))
    url = scratch_db()
    with pytest.raises(CommandError, match="authentication failed"):
        call_command("restore_platform_db", into=url)
    assert rows(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    drill = RestoreDrill.objects.get()
    assert drill.status == RunStatus.FAILED and "authentication failed" in drill.error


def test_backup_crash_after_the_dump_is_never_restored_and_the_next_run_cleans_up(
    backup_store, make_tenant, crash_at, scratch_db
) -> None:
    make_tenant()
    first = services.backup_create(actor=ACTOR)
    crash_at("dumped")
    with pytest.raises(SimulatedCrash):
        tasks.backup_platform_db()  # the beat task, killed between the dump and the manifest
    crashed = PlatformBackup.objects.get(status=RunStatus.RUNNING)
    assert [(b.name, b.has_manifest) for b in store.listing()] == [(first.name, True), (crashed.name, False)]
    assert services.backup_resolve(None) == first.name  # the unfinished dump is never the newest backup
    PlatformBackup.objects.filter(pk=crashed.pk).update(started_at=crashed.started_at - services.ABANDONED_AFTER * 2)

    second = services.backup_create(actor=ACTOR)
    crashed.refresh_from_db()
    assert crashed.status == RunStatus.FAILED and "abandoned" in crashed.error
    assert [b.name for b in store.listing()] == [first.name, second.name]
    url = scratch_db()
    drill = drills.restore_drill_run(into_url=url, actor=ACTOR)
    assert drill.backup_name == second.name and drill.status == RunStatus.COMPLETED


def test_object_store_down_fails_the_backup_with_its_reason_and_keeps_nothing(
    settings, backup_store, make_tenant
) -> None:
    from archival.tests.conftest import s3_storage_config

    make_tenant()
    settings.STORAGES = {**settings.STORAGES, "backups": s3_storage_config(backup_store, "http://127.0.0.1:1")}
    with pytest.raises(CommandError, match=r"backup .* failed: upload .* failed"):
        call_command("backup_platform_db")
    failed = PlatformBackup.objects.get()
    assert failed.status == RunStatus.FAILED and "upload" in failed.error
    settings.STORAGES = {**settings.STORAGES, "backups": s3_storage_config(backup_store)}
    assert store.listing() == []


def test_the_weekly_drill_task_uses_a_scratch_database_and_drops_it(
    settings, backup_store, make_tenant, scratch_db, crash_at
) -> None:
    from backups import tasks

    make_tenant()
    tasks.backup_platform_db()
    url = scratch_db(create=False)
    settings.BACKUP_DRILL_DATABASE_URL = url
    assert tasks.restore_drill().endswith(": completed")
    crash_at("restored")
    with pytest.raises(SimulatedCrash):
        tasks.restore_drill()
    target = pg.target_from_url(url)
    with pg.connect(target, autocommit=True, dbname="postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target.dbname]).fetchone() is None
    assert tasks.restore_drill().endswith(": completed")  # safe to run again after the crash
    settings.BACKUP_DRILL_DATABASE_URL = url.replace("_drill_", "_precious_")
    with pytest.raises(InvalidInput, match="must have 'drill' in its name"):
        tasks.restore_drill()
    assert objectstore.list_keys(store.PREFIX, alias=store.ALIAS)
    assert Tenant.objects.count() == 1
