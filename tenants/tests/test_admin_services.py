from tenants.admin_services import tenant_update
from tenants.models import TenantState
from tenants.services import tenant_assign_pod


def test_an_email_change_keeps_the_pod(tenant, actor) -> None:
    state = tenant_assign_pod(tenant_id=tenant.id, pod_id="10.0.0.1:8000", actor=actor)
    tenant_update(tenant_id=tenant.id, actor=actor, email="New@Example.com")
    after = TenantState.objects.get(tenant=tenant)
    assert after.generation == state.generation and after.pod_id == "10.0.0.1:8000"
    tenant.refresh_from_db()
    assert tenant.email == "new@example.com"
