"""Retention: complete backups past BACKUP_RETENTION_DAYS go, the newest BACKUP_KEEP_AT_LEAST always stay."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from archival import objectstore
from backups import services, store
from backups.models import PlatformBackup, RunStatus

pytestmark = pytest.mark.django_db


def put_backup(age_days: float, *, complete: bool = True) -> str:
    name = store.new_name(timezone.now() - timedelta(days=age_days))
    objectstore.upload(store.dump_key(name), io.BytesIO(b"sealed dump bytes"), alias=store.ALIAS)
    if complete:
        store.write_manifest(name, {"name": name, "tables": {}})
    return name


def test_expired_backups_are_deleted_and_the_newest_kept_whatever_their_age(settings, backup_store) -> None:
    settings.BACKUP_RETENTION_DAYS, settings.BACKUP_KEEP_AT_LEAST = 35, 4
    ancient, old, older, recent, fresh = (put_backup(d) for d in (100, 50, 40, 1, 0))
    unfinished = put_backup(2, complete=False)
    PlatformBackup.objects.create(name=ancient, actor="t", object_key=store.dump_key(ancient), status="completed")
    deleted = services.backups_prune()
    assert sorted(deleted) == sorted([ancient, unfinished])
    assert [b.name for b in store.listing()] == [old, older, recent, fresh]
    assert PlatformBackup.objects.get(name=ancient).pruned_at is not None

    settings.BACKUP_KEEP_AT_LEAST = 1
    assert sorted(services.backups_prune()) == sorted([old, older])
    assert [b.name for b in store.listing()] == [recent, fresh]


def test_a_dump_still_being_written_is_not_pruned(settings, backup_store) -> None:
    name = put_backup(0, complete=False)
    PlatformBackup.objects.create(name=name, actor="t", object_key=store.dump_key(name), status=RunStatus.RUNNING)
    assert services.backups_prune() == []
    assert [b.name for b in store.listing()] == [name]


def test_manifests_are_sealed_and_bound_to_their_name(backup_store) -> None:
    name, other = put_backup(1), put_backup(0)
    assert store.read_manifest(name)["name"] == name
    with objectstore.open_reader(store.manifest_key(other), alias=store.ALIAS) as reader:
        objectstore.upload(store.manifest_key(name), io.BytesIO(reader.read()), alias=store.ALIAS)
    with pytest.raises(Exception, match="stored under"):
        store.read_manifest(name)
