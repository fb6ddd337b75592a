"""Restore is proven by the seal (and RocksDB opening the result); `--verify` and the drills keep the full check.

What each check catches: a changed byte or another tenant's object fails the seal (test_services); another authentic
archive of the same tenant put at the object's key fails the seal id (or, for archives recorded before seal ids, the
SHA-256); a digest that does not match is seen only by the full check, which the default restore skips on purpose.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from archival import rocks, services
from archival.models import ArchivalJob, JobStatus
from archival.selectors import tenant_data_dir
from archival.tests.test_services import ACTOR, archive, restore, state_of
from tenants.models import State
from tenants.services import tenant_state_transition


def _spoil_recorded_digest(job: ArchivalJob) -> None:
    job.manifest["rocks_digest"] = "0" * 64
    job.save(update_fields=["manifest"])


def test_default_restore_skips_full_check_verify_keeps_it(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 300)
    job = archive(tenant)
    assert job.manifest["seal_id"] and len(job.manifest["seal_id"]) == 16
    _spoil_recorded_digest(job)

    out = StringIO()
    with pytest.raises(CommandError, match="restored RocksDB does not match the manifest"):
        call_command("restore_tenant", str(tenant.id), "--wait", "--verify", stdout=out, stderr=StringIO())
    failed = ArchivalJob.objects.filter(tenant=tenant, job_type="restore").get()
    assert failed.status == JobStatus.FAILED and failed.manifest["verify"] is True
    assert state_of(tenant).state == State.ARCHIVED
    assert not tenant_data_dir(tenant.id).exists()
    assert not (data_root / services.SCRATCH_DIR / str(failed.id)).exists()

    rjob = restore(tenant)  # the same object, the default check: the seal proves the bytes, RocksDB opens them
    assert rjob.status == JobStatus.COMPLETED, rjob.error_message
    assert rocks.digest(tenant_data_dir(tenant.id)) == before


@pytest.mark.parametrize("recorded", ["seal_id", "sha256 only (archives made before seal ids)"])
def test_an_older_archive_put_in_place_is_refused(db, fs_store, data_root, make_tenant, rocks_tenant, recorded) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 50)
    old = archive(tenant)
    restore(tenant)
    rocks_tenant(tenant, 80)  # the tenant wrote more, then went cold again
    tenant_state_transition(
        tenant_id=tenant.id, to_state=State.COLD, generation=state_of(tenant).generation, actor=ACTOR
    )
    new = archive(tenant)
    if recorded != "seal_id":
        new.manifest.pop("seal_id")
        new.save(update_fields=["manifest"])
    # An older archive of this tenant, sealed with the same key and valid in every chunk, put where the newest is.
    (fs_store / new.manifest["object_key"]).write_bytes((fs_store / old.manifest["object_key"]).read_bytes())
    new.manifest["bytes_out"] = (fs_store / old.manifest["object_key"]).stat().st_size  # sizes prove nothing
    new.save(update_fields=["manifest"])
    rjob = services.restore_request(tenant_id=tenant.id, actor=ACTOR, enqueue=False)
    with pytest.raises(services.ArchivalError, match="is not the archive its manifest names"):
        services.restore_run(job_id=rjob.id)
    assert state_of(tenant).state == State.ARCHIVED
    assert not tenant_data_dir(tenant.id).exists()
    assert not (data_root / services.SCRATCH_DIR / str(rjob.id)).exists()


def test_a_restored_tree_rocksdb_cannot_open_is_refused(tmp_path) -> None:
    db = tmp_path / "db"
    rocks.build(db, {b"k": b"v"})
    rocks.check_opens(db)
    (db / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(rocks.RocksError, match="cannot open RocksDB"):
        rocks.check_opens(db)
    empty = tmp_path / "empty"
    empty.mkdir()
    rocks.check_opens(empty)  # a tenant that never wrote anything
