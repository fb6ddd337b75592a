"""Selectors: the gateway's tier lookup and the cold-tenant sweep."""

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.models import Tenant, TenantState
from tenants.selectors import TenantRoute, cold_tenants_idle, tenant_counts, tenant_route, tenant_routes
from tenants.services import tenant_suspend

pytestmark = pytest.mark.django_db


def test_tenant_route_fields(make_tenant: Callable[..., Tenant], actor: object) -> None:
    tenant = make_tenant(tier="A", security_mode="mobile_only")
    TenantState.objects.filter(tenant=tenant).update(state="hot", generation=7, pod_id="tier-a-1")
    route = tenant_route(tenant_id=tenant.id)
    assert route == TenantRoute(
        tenant_id=tenant.id,
        tier="A",
        status="active",
        security_mode="mobile_only",
        state="hot",
        generation=7,
        pod_id="tier-a-1",
    )
    tenant_suspend(tenant_id=tenant.id, actor=actor)
    route = tenant_route(tenant_id=str(tenant.id))
    assert route is not None
    assert route.status == "suspended"


def test_tenant_route_is_one_query(tenant: Tenant, django_assert_num_queries: Callable[..., object]) -> None:
    with django_assert_num_queries(1):  # type: ignore[attr-defined]
        assert tenant_route(tenant_id=tenant.id) is not None
    with django_assert_num_queries(1):  # type: ignore[attr-defined]
        assert tenant_route(tenant_id=uuid.uuid4()) is None


def test_tenant_routes_reads_many_in_one_query(
    make_tenant: Callable[..., Tenant], django_assert_num_queries: Callable[..., object]
) -> None:
    a, b = make_tenant(), make_tenant(tier="A")
    TenantState.objects.filter(tenant=b).update(state="hot", generation=3, pod_id="tier-a-0")
    with django_assert_num_queries(1):  # type: ignore[attr-defined]
        routes = tenant_routes(tenant_ids=[a.id, b.id, uuid.uuid4()])
    assert routes == {a.id: tenant_route(tenant_id=a.id), b.id: tenant_route(tenant_id=b.id)}  # unknown: absent
    assert tenant_routes(tenant_ids=[]) == {}


def test_tenant_route_without_state_row_defaults_to_cold(db: None) -> None:
    tenant = Tenant.objects.create(email="nostate@example.com", tier="C")
    route = tenant_route(tenant_id=tenant.id)
    assert route is not None
    assert (route.state, route.generation, route.pod_id) == ("cold", 1, None)


@pytest.mark.parametrize("bad", [uuid.uuid4(), str(uuid.uuid4()), "garbage", "", "1234", None, {"a": 1}, 3.5])
def test_tenant_route_unknown_or_garbage_is_none(db: None, bad: object) -> None:
    assert tenant_route(tenant_id=bad) is None


def _cold(make_tenant: Callable[..., Tenant], days_idle: float, state: str = "cold") -> Tenant:
    tenant = make_tenant()
    TenantState.objects.filter(tenant=tenant).update(
        state=state, last_access_at=timezone.now() - timedelta(days=days_idle)
    )
    return tenant


def test_cold_tenants_idle_cutoff_and_order(make_tenant: Callable[..., Tenant]) -> None:
    t90 = _cold(make_tenant, 90)
    t61 = _cold(make_tenant, 61)
    _cold(make_tenant, 59)  # not idle long enough
    _cold(make_tenant, 1)
    _cold(make_tenant, 100, state="warm")  # not cold
    _cold(make_tenant, 100, state="archived")  # already archived
    t200 = _cold(make_tenant, 200)
    ids = [s.tenant_id for s in cold_tenants_idle(idle_days=60)]
    assert ids == [t200.id, t90.id, t61.id]  # longest idle first


def test_cold_tenants_idle_limit(make_tenant: Callable[..., Tenant]) -> None:
    tenants = [_cold(make_tenant, 70 + i) for i in range(5)]
    ids = [s.tenant_id for s in cold_tenants_idle(idle_days=60, limit=2)]
    assert ids == [tenants[4].id, tenants[3].id]
    assert list(cold_tenants_idle(idle_days=60, limit=0)) == []
    assert len(list(cold_tenants_idle(idle_days=60))) == 5


def test_cold_tenants_idle_respects_now(make_tenant: Callable[..., Tenant]) -> None:
    tenant = _cold(make_tenant, 10)
    assert list(cold_tenants_idle(idle_days=60)) == []
    later = timezone.now() + timedelta(days=55)
    assert [s.tenant_id for s in cold_tenants_idle(idle_days=60, now=later)] == [tenant.id]
    assert list(cold_tenants_idle(idle_days=60, now=later - timedelta(days=10))) == []


def test_tenant_counts(make_tenant: Callable[..., Tenant], actor: object) -> None:
    a = make_tenant(tier="A")
    make_tenant(tier="A")
    make_tenant(tier="C")
    tenant_suspend(tenant_id=a.id, actor=actor)
    counts = tenant_counts()
    assert counts["status"] == [("A", "active", 1), ("A", "suspended", 1), ("C", "active", 1)]
    assert counts["state"] == [("A", "cold", 2), ("C", "cold", 1)]


def test_a_tenant_with_an_unfinished_tier_move_is_routed_as_moving(
    make_tenant: Callable[..., Tenant], actor: object, django_assert_num_queries: Callable[..., object]
) -> None:
    from moves.services import tenant_move

    moving, still = make_tenant(tier="B"), make_tenant(tier="B")
    tenant_move(tenant_id=moving.id, tier="A", actor=actor, enqueue=False)
    tenant_move(tenant_id=still.id, tier="B", actor=actor)  # a finished no-op
    with django_assert_num_queries(1):  # type: ignore[attr-defined]
        route = tenant_route(tenant_id=moving.id)
    assert route is not None and route.moving
    routes = tenant_routes(tenant_ids=[moving.id, still.id])
    assert (routes[moving.id].moving, routes[still.id].moving) == (True, False)
