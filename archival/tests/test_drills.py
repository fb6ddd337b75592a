"""The archive drill from beat: a bounded sample checked in full, recorded for the admin and the metrics."""

import pytest
from django.core.management import CommandError, call_command

from archival import beat, tasks
from archival.models import ArchiveDrill, DrillStatus
from archival.tests.test_services import archive
from percolate_platform.worker_metrics import build_registry


def sample(name: str, labels: dict | None = None) -> float | None:
    return build_registry().get_sample_value(name, labels or {})


def test_beat_runs_the_drill_every_period() -> None:
    entry = beat.archival_beat_schedule(drill_every_days=3)["archival-verify-archives"]
    assert entry["task"] == "archival.verify_archives"
    assert entry["schedule"].total_seconds() == 3 * 86400


def test_drill_samples_checks_records_and_reports(
    db, fs_store, data_root, make_tenant, rocks_tenant, settings, admin_client
) -> None:
    assert sample("percolate_archive_drill_last_run_timestamp_seconds") == 0  # never: the alert's "missing"
    tenants = [make_tenant() for _ in range(3)]
    jobs = []
    for n, tenant in enumerate(tenants):
        rocks_tenant(tenant, 20 + n)
        jobs.append(archive(tenant))
    settings.ARCHIVE_DRILL_SAMPLE = 2

    assert tasks.verify_archives().endswith("passed (2/2)")  # bounded: two of three
    passed = ArchiveDrill.objects.get()
    assert (passed.status, passed.sample_size, passed.checked, passed.failed) == (DrillStatus.PASSED, 2, 2, 0)
    assert sample("percolate_archive_drill_last_success_timestamp_seconds") == pytest.approx(
        passed.completed_at.timestamp()
    )
    assert sample("percolate_archive_drill_period_seconds") == settings.ARCHIVE_DRILL_EVERY_DAYS * 86400

    # An archive whose recorded digest no longer matches what it holds: only the full check sees it.
    jobs[0].manifest["rocks_digest"] = "0" * 64
    jobs[0].save(update_fields=["manifest"])
    with pytest.raises(CommandError, match="1 archive"):
        call_command("verify_archives", stdout=open("/dev/null", "w"))  # noqa: SIM115
    failed = ArchiveDrill.objects.order_by("-started_at").first()
    assert failed is not None and failed.status == DrillStatus.FAILED and failed.failed == 1
    assert failed.failures[0]["tenant_id"] == str(tenants[0].id)
    assert "does not match the manifest" in failed.failures[0]["error"]
    assert sample("percolate_archive_drill_last_failures") == 1
    assert sample("percolate_archive_drills_total", {"status": "failed"}) == 1

    page = admin_client.get("/admin/archival/archivedrill/")
    assert page.status_code == 200 and b"failed" in page.content
    detail = admin_client.get(f"/admin/archival/archivedrill/{failed.id}/change/")
    assert detail.status_code == 200 and str(tenants[0].id).encode() in detail.content
