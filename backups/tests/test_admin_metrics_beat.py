"""What operators see: the admin lists, the worker's backup metrics, the beat entries."""

import pytest
from django.utils import timezone

from backups.beat import backup_beat_schedule
from backups.models import PlatformBackup, RestoreDrill, RunStatus
from percolate_platform.worker_metrics import build_registry

pytestmark = pytest.mark.django_db


def sample(name: str, labels: dict | None = None) -> float | None:
    return build_registry().get_sample_value(name, labels or {})


def test_metrics_say_never_until_a_backup_completes() -> None:
    assert sample("percolate_platform_backup_last_success_timestamp_seconds") == 0
    PlatformBackup.objects.create(name="20261201T000000000000Z-aa", actor="t", object_key="k", status=RunStatus.FAILED)
    done = timezone.now()
    PlatformBackup.objects.create(
        name="20261202T000000000000Z-bb",
        actor="t",
        object_key="k",
        status=RunStatus.COMPLETED,
        completed_at=done,
        sealed_bytes=1234,
        duration_seconds=5.5,
    )
    RestoreDrill.objects.create(
        backup_name="20261202T000000000000Z-bb", target="x", actor="t", status="completed", completed_at=done
    )
    assert sample("percolate_platform_backup_last_success_timestamp_seconds") == pytest.approx(done.timestamp())
    assert sample("percolate_platform_backup_last_size_bytes") == 1234
    assert sample("percolate_platform_backup_last_duration_seconds") == 5.5
    assert sample("percolate_platform_backup_runs_total", {"status": "failed"}) == 1
    assert sample("percolate_platform_restore_drill_last_success_timestamp_seconds") == pytest.approx(done.timestamp())


def test_beat_takes_backups_only_where_no_cronjob_does() -> None:
    assert set(backup_beat_schedule(enabled=True)) == {"backups-backup-platform-db", "backups-restore-drill"}
    assert set(backup_beat_schedule(enabled=False)) == {"backups-restore-drill"}


def test_admin_lists_render_for_staff_with_permission_and_are_refused_otherwise(
    admin_client_root, client, staff_without_permissions
) -> None:
    PlatformBackup.objects.create(name="20261202T000000000000Z-bb", actor="t", object_key="k", status="completed")
    RestoreDrill.objects.create(backup_name="20261202T000000000000Z-bb", target="x", actor="t")
    for path in ("/admin/backups/platformbackup/", "/admin/backups/restoredrill/"):
        assert admin_client_root.get(path).status_code == 200
        assert client.get(path).status_code == 302  # anonymous: to the login page
        client.force_login(staff_without_permissions)
        assert client.get(path).status_code == 403
        client.logout()
    backup = PlatformBackup.objects.get()
    page = admin_client_root.get(f"/admin/backups/platformbackup/{backup.pk}/change/")
    assert page.status_code == 200 and backup.name.encode() in page.content  # view-only page
    assert admin_client_root.post(f"/admin/backups/platformbackup/{backup.pk}/change/", {}).status_code == 403
