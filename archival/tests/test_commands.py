"""Commands: archive, restore, sweep (dry run and limit), verify drill."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from archival import rocks
from archival.selectors import tenant_data_dir
from tenants.models import State, TenantState


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_archive_restore_verify(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    before = rocks_tenant(tenant, 40)
    assert "completed" in run("archive_tenant", str(tenant.id), "--wait")
    assert "1/1 archives verified" in run("verify_archives", "--sample", "5")
    with pytest.raises(CommandError, match=r"already archived|only cold"):
        run("archive_tenant", str(tenant.id), "--wait")
    assert "completed" in run("restore_tenant", str(tenant.id), "--wait")
    assert rocks.digest(tenant_data_dir(tenant.id)) == before


def test_verify_reports_a_corrupted_archive(db, fs_store, data_root, make_tenant, rocks_tenant) -> None:
    tenant = make_tenant()
    rocks_tenant(tenant, 40)
    run("archive_tenant", str(tenant.id), "--wait")
    obj = next(fs_store.rglob("*.sealed"))
    obj.write_bytes(obj.read_bytes()[:-10])
    with pytest.raises(CommandError, match="1 archive"):
        run("verify_archives")


def test_sweep_dry_run_and_limit(db, fs_store, data_root, make_tenant, django_capture_on_commit_callbacks) -> None:
    tenants = [make_tenant() for _ in range(3)]
    TenantState.objects.filter(tenant__in=tenants).update(last_access_at=timezone.now() - timedelta(days=61))
    out = run("archive_cold_tenants", "--dry-run")
    assert "3 tenant(s) (dry run)" in out
    assert TenantState.objects.filter(state=State.ARCHIVED).count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert "2 tenant(s)" in run("archive_cold_tenants", "--limit", "2")
    assert TenantState.objects.filter(state=State.ARCHIVED).count() == 2


def test_unknown_tenant(db, fs_store, data_root) -> None:
    for command in ("archive_tenant", "restore_tenant"):
        with pytest.raises(CommandError, match="no tenant"):
            run(command, "00000000-0000-0000-0000-000000000000")
        with pytest.raises(CommandError, match="no tenant"):
            run(command, "nobody@example.com")
