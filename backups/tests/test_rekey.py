"""Master key rotation: every tenant key re-wrapped under the new key, data keys and archives untouched."""

import secrets

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from archival import services as archival_services
from archival.tests.conftest import SimulatedCrash
from backups import keys as backup_keys
from backups import rekey, services, store
from core.audit import Actor
from core.errors import Conflict
from percolate_platform.master_key import fingerprint
from tenants.keys import tenant_data_key
from tenants.models import AuditLog, TenantKey

ACTOR = Actor.system("test:rekey")


@pytest.mark.django_db
def test_rotation_rewraps_every_key_and_old_archives_still_open(
    settings, s3_store, data_root, make_tenant, rocks_tenant, capsys
) -> None:
    old, new = settings.PLATFORM_MASTER_KEY, secrets.token_bytes(32)
    tenants = [make_tenant() for _ in range(7)]
    before = {t.id: tenant_data_key(tenant_id=t.id) for t in tenants}
    rocks_tenant(tenants[0], 40)
    job = archival_services.archive_request(tenant_id=tenants[0].id, actor=ACTOR, enqueue=False)
    job = archival_services.archive_run(job_id=job.id)

    settings.PLATFORM_MASTER_KEY, settings.PLATFORM_MASTER_KEY_PREVIOUS = new, [old]
    assert {t.id: tenant_data_key(tenant_id=t.id) for t in tenants} == before  # unwrapped by the previous key
    fresh = make_tenant()
    tenant_data_key(tenant_id=fresh.id)  # a key made during the rotation is wrapped by the new key at once
    call_command("rotate_master_key", "--dry-run")
    assert f"7 keys wrapped by master key {fingerprint(old)}" in capsys.readouterr().out

    call_command("rotate_master_key", "--batch-size", "3")
    assert "7 keys re-wrapped, 0 left" in capsys.readouterr().out
    assert set(TenantKey.objects.values_list("master_key_id", flat=True)) == {fingerprint(new)}
    settings.PLATFORM_MASTER_KEY_PREVIOUS = []  # the old key is gone: everything must open with the new one alone
    assert {t.id: tenant_data_key(tenant_id=t.id) for t in tenants} == before
    assert archival_services.verify_archive(job=job).entry_count == 40
    entry = AuditLog.objects.get(action="platform.master_key_rotated")
    assert entry.metadata["rewrapped"] == {fingerprint(old): 7}
    call_command("rotate_master_key")
    assert "0 keys to re-wrap" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_key_under_an_unknown_master_key_stops_the_rotation_without_half_a_batch(settings, make_tenant) -> None:
    tenants = [make_tenant() for _ in range(3)]
    for tenant in tenants:
        tenant_data_key(tenant_id=tenant.id)
    stranger = TenantKey.objects.get(tenant=tenants[1])
    TenantKey.objects.filter(pk=stranger.pk).update(master_key_id="0123456789abcdef")
    settings.PLATFORM_MASTER_KEY_PREVIOUS = [settings.PLATFORM_MASTER_KEY]
    settings.PLATFORM_MASTER_KEY = secrets.token_bytes(32)
    with pytest.raises(CommandError, match="add it to PLATFORM_MASTER_KEY_PREVIOUS"):
        call_command("rotate_master_key", "--batch-size", "10")
    # the whole batch rolled back: nothing is under the new key yet
    assert not TenantKey.objects.filter(master_key_id=fingerprint(settings.PLATFORM_MASTER_KEY)).exists()
    with pytest.raises(Conflict):
        rekey.master_key_rewrap(actor=ACTOR, batch_size=1)


@pytest.mark.django_db(transaction=True)
def test_backups_sealed_under_the_old_master_key_open_only_while_it_is_configured(
    settings, backup_store, make_tenant
) -> None:
    make_tenant()
    backup = services.backup_create(actor=ACTOR)
    old = settings.PLATFORM_MASTER_KEY
    settings.PLATFORM_MASTER_KEY, settings.PLATFORM_MASTER_KEY_PREVIOUS = secrets.token_bytes(32), [old]
    assert store.read_manifest(backup.name)["master_key_id"] == fingerprint(old)
    settings.PLATFORM_MASTER_KEY_PREVIOUS = []
    with pytest.raises(Exception, match="neither PLATFORM_MASTER_KEY nor in PLATFORM_MASTER_KEY_PREVIOUS"):
        store.read_manifest(backup.name)
    assert backup_keys.key_for(backup_keys.current()[0]) == backup_keys.current()[1]


@pytest.mark.django_db(transaction=True)
def test_a_rotation_killed_midway_keeps_whole_batches_and_the_next_run_finishes(settings, make_tenant, capsys):
    tenants = [make_tenant() for _ in range(5)]
    before = {t.id: tenant_data_key(tenant_id=t.id) for t in tenants}
    old, new = settings.PLATFORM_MASTER_KEY, secrets.token_bytes(32)
    settings.PLATFORM_MASTER_KEY, settings.PLATFORM_MASTER_KEY_PREVIOUS = new, [old]

    def killed_after_first_batch(n: int) -> None:
        raise SimulatedCrash("killed")

    with pytest.raises(SimulatedCrash):
        rekey.master_key_rewrap(actor=ACTOR, batch_size=2, progress=killed_after_first_batch)
    under = list(TenantKey.objects.values_list("master_key_id", flat=True))
    assert sorted(under).count(fingerprint(new)) == 2 and sorted(under).count(fingerprint(old)) == 3
    assert {t.id: tenant_data_key(tenant_id=t.id) for t in tenants} == before  # both halves still open

    call_command("rotate_master_key", "--batch-size", "2")
    assert "3 keys re-wrapped, 0 left" in capsys.readouterr().out
    settings.PLATFORM_MASTER_KEY_PREVIOUS = []
    assert {t.id: tenant_data_key(tenant_id=t.id) for t in tenants} == before
