import redis
from django.conf import settings

from tenants.admin_services import tenant_update
from tenants.events import CHANNEL
from tenants.models import AuditLog, TenantState
from tenants.services import tenant_assign_pod


def test_a_tier_change_fences_the_old_pod_and_tells_the_gateways(tenant, actor, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    state = tenant_assign_pod(tenant_id=tenant.id, pod_id="10.0.0.1:8000", actor=actor)
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    with django_capture_on_commit_callbacks(execute=True):
        tenant_update(tenant_id=tenant.id, actor=actor, tier="A")
    after = TenantState.objects.get(tenant=tenant)
    assert after.generation == state.generation + 1 and after.pod_id is None and after.tier_deployment == "tier-a"
    message = pubsub.get_message(timeout=2)
    assert message is not None and message["data"] == f"tenant:{tenant.id}".encode()
    audit = AuditLog.objects.get(action="tenant.updated", tenant=tenant)
    assert audit.metadata["changes"] == {"tier": ["B", "A"]}
    pubsub.close()
    client.close()


def test_an_email_change_keeps_the_pod(tenant, actor) -> None:  # type: ignore[no-untyped-def]
    state = tenant_assign_pod(tenant_id=tenant.id, pod_id="10.0.0.1:8000", actor=actor)
    tenant_update(tenant_id=tenant.id, actor=actor, email="New@Example.com")
    after = TenantState.objects.get(tenant=tenant)
    assert after.generation == state.generation and after.pod_id == "10.0.0.1:8000"
    tenant.refresh_from_db()
    assert tenant.email == "new@example.com"
