"""Admin actions enqueue through the services and report refusals."""

from archival import beat
from archival.models import ArchivalJob, JobStatus
from tenants.models import AuditLog, State, TenantState


def _run_action(client, action: str, tenants) -> list[str]:
    response = client.post(
        "/admin/tenants/tenant/",
        {"action": action, "_selected_action": [str(t.pk) for t in tenants]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_archive_now_and_restore_from_the_tenant_changelist(
    db, fs_store, data_root, make_tenant, rocks_tenant, admin_client_root, django_capture_on_commit_callbacks
) -> None:
    cold, warm = make_tenant(), make_tenant()
    rocks_tenant(cold, 10)
    st = TenantState.objects.get(tenant=warm)
    TenantState.objects.filter(tenant=warm).update(state=State.WARM, generation=st.generation)
    with django_capture_on_commit_callbacks(execute=True):
        messages = _run_action(admin_client_root, "archive_now", [cold, warm])
    assert "1 archive(s) enqueued." in messages
    assert any("is warm" in m for m in messages)
    assert TenantState.objects.get(tenant=cold).state == State.ARCHIVED
    with django_capture_on_commit_callbacks(execute=True):
        messages = _run_action(admin_client_root, "restore", [cold])
    assert "1 restore(s) enqueued." in messages
    assert TenantState.objects.get(tenant=cold).state == State.WARM
    assert ArchivalJob.objects.filter(tenant=cold, status=JobStatus.COMPLETED).count() == 2
    audit = AuditLog.objects.filter(tenant=cold, ip_address="198.51.100.20").values_list("action", flat=True)
    assert audit.exists()


def test_beat_schedule_names_the_sweep() -> None:
    entry = beat.archival_beat_schedule(drill_every_days=7)["archival-archive-cold-tenants"]
    assert entry["task"] == "archival.archive_cold_tenants"
