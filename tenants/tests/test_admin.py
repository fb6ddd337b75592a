"""The staff admin: pages render for a superuser and are refused to outsiders; actions and edits go through the
services and leave audit rows with the admin's address; search and filters use indexes; the paginator estimates."""

import base64
import json
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from core.admin_paginator import EXACT_COUNT_THRESHOLD, EstimatedCountPaginator, estimated_count
from core.audit import Actor
from tenants.models import AuditLog, Device, Tenant, TenantKey, TenantMetric, TenantState, TenantStatus

pytestmark = pytest.mark.django_db

ADMIN_IP = "203.0.113.9"


def make_device(tenant: Tenant, name: str = "phone") -> Device:
    return Device.objects.create(
        tenant=tenant,
        device_name=name,
        platform="ios",
        public_key_signing=f"sig-{uuid.uuid4().hex}",
        public_key_encryption=f"enc-{uuid.uuid4().hex}",
    )


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client(REMOTE_ADDR=ADMIN_IP)
    client.force_login(superuser)
    return client


@pytest.fixture
def noperm_client(staff_without_permissions: User) -> Client:
    client = Client(REMOTE_ADDR=ADMIN_IP)
    client.force_login(staff_without_permissions)
    return client


@pytest.fixture
def objects(tenant: Tenant) -> dict[str, object]:
    """One row of each tenants-app model (the tenant fixture brings its state, key and `tenant.created` audit row)."""
    device = make_device(tenant)
    metric = TenantMetric.objects.create(tenant=tenant, metric_name="requests", metric_value=Decimal("3.5"))
    return {
        "tenant": tenant,
        "device": device,
        "auditlog": AuditLog.objects.filter(tenant=tenant).first(),
        "tenantkey": TenantKey.objects.get(tenant=tenant),
        "tenantmetric": metric,
    }


# model name -> whether the admin offers an add form
MODELS = {"tenant": True, "device": False, "auditlog": False, "tenantkey": False, "tenantmetric": False}


def url(model: str, view: str, *args: object) -> str:
    app = "accounts" if model == "user" else "tenants"
    return reverse(f"admin:{app}_{model}_{view}", args=args)


# -- rendering and refusal ----------------------------------------------------------------------------------------


def test_admin_index_renders(root_client: Client) -> None:
    response = root_client.get(reverse("admin:index"))
    assert response.status_code == 200
    for name in ("Tenants", "Devices", "Audit logs", "Tenant keys", "Tenant metrics"):
        assert name in response.content.decode()


@pytest.mark.parametrize("model", list(MODELS))
def test_changelist_and_change_form_render_for_superuser(
    root_client: Client, objects: dict[str, object], model: str
) -> None:
    assert root_client.get(url(model, "changelist")).status_code == 200
    obj = objects[model]
    assert root_client.get(url(model, "change", obj.pk)).status_code == 200  # type: ignore[attr-defined]
    add = root_client.get(url(model, "add"))
    assert add.status_code == (200 if MODELS[model] else 403)


def test_user_admin_renders(root_client: Client, superuser: User) -> None:
    assert root_client.get(url("user", "changelist")).status_code == 200
    assert root_client.get(url("user", "change", superuser.pk)).status_code == 200
    assert root_client.get(url("user", "add")).status_code == 200


@pytest.mark.parametrize("model", [*MODELS, "user"])
def test_staff_without_permission_is_refused(
    noperm_client: Client, objects: dict[str, object], superuser: User, model: str
) -> None:
    obj = superuser if model == "user" else objects[model]
    assert noperm_client.get(url(model, "changelist")).status_code == 403
    assert noperm_client.get(url(model, "change", obj.pk)).status_code == 403  # type: ignore[attr-defined]
    assert noperm_client.get(url(model, "add")).status_code == 403


@pytest.mark.parametrize("model", list(MODELS))
def test_anonymous_and_non_staff_are_sent_to_login(plain_user: User, objects: dict[str, object], model: str) -> None:
    anonymous = Client()
    response = anonymous.get(url(model, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    plain = Client()
    plain.force_login(plain_user)
    response = plain.get(url(model, "change", objects[model].pk))  # type: ignore[attr-defined]
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_staff_with_view_permission_only_sees_no_actions(staff_without_permissions: User, tenant: Tenant) -> None:
    from django.contrib.auth.models import Permission

    staff_without_permissions.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client = Client(REMOTE_ADDR=ADMIN_IP)
    client.force_login(staff_without_permissions)
    response = client.get(url("tenant", "changelist"))
    assert response.status_code == 200
    assert "suspend_tenants" not in response.content.decode()
    response = client.post(
        url("tenant", "changelist"), {"action": "suspend_tenants", "_selected_action": [str(tenant.pk)]}
    )
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert response.status_code == 200  # "No action selected": the action is not offered to this user
    # ...and the change form is view-only for them
    response = client.post(url("tenant", "change", tenant.pk), {"email": "x@example.com", "tier": "A"})
    assert response.status_code == 403


# -- the audit log is read-only for everyone ------------------------------------------------------------------


def test_audit_log_cannot_be_added_changed_or_deleted_even_by_superuser(
    root_client: Client, objects: dict[str, object]
) -> None:
    row = objects["auditlog"]
    assert isinstance(row, AuditLog)
    before = AuditLog.objects.filter(pk=row.pk).values().get()
    count = AuditLog.objects.count()

    assert root_client.post(url("auditlog", "add"), {"actor": "me", "action": "forged"}).status_code == 403
    response = root_client.post(url("auditlog", "change", row.pk), {"actor": "me", "action": "forged"})
    assert response.status_code == 403
    assert root_client.post(url("auditlog", "delete", row.pk), {"post": "yes"}).status_code == 403
    root_client.post(
        url("auditlog", "changelist"), {"action": "delete_selected", "_selected_action": [str(row.pk)], "post": "yes"}
    )

    assert AuditLog.objects.count() == count
    assert AuditLog.objects.filter(pk=row.pk).values().get() == before
    page = root_client.get(url("auditlog", "change", row.pk)).content.decode()
    assert 'name="_save"' not in page  # a view-only page: no save button


def test_audit_log_search_by_tenant_id_and_filter_by_action(
    root_client: Client, make_tenant: Callable[..., Tenant]
) -> None:
    first, second = make_tenant(), make_tenant()
    response = root_client.get(url("auditlog", "changelist"), {"q": str(first.pk)})
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows and all(row.tenant_id == first.pk for row in rows)
    assert str(first.pk) in response.content.decode()
    assert str(second.pk) not in response.content.decode()
    # non-UUID search: nothing (there is no index to serve it)
    response = root_client.get(url("auditlog", "changelist"), {"q": "root"})
    assert list(response.context["cl"].result_list) == []
    # action filter lists the distinct actions (loose index scan) and filters on them
    response = root_client.get(url("auditlog", "changelist"))
    assert "?action=tenant.created" in response.content.decode()
    response = root_client.get(url("auditlog", "changelist"), {"action": "tenant.created"})
    assert {row.action for row in response.context["cl"].result_list} == {"tenant.created"}
    response = root_client.get(url("auditlog", "changelist"), {"action": "tenant.suspended"})
    assert list(response.context["cl"].result_list) == []


# -- tenant actions and edits go through services, with the admin's address ---------------------------------------


def select(client: Client, action: str, *tenants: Tenant, **extra: str) -> object:
    data = {"action": action, "_selected_action": [str(t.pk) for t in tenants], **extra}
    return client.post(url("tenant", "changelist"), data, follow=True)


def test_suspend_and_reactivate_actions_write_audit_rows_with_admin_ip(
    root_client: Client, make_tenant: Callable[..., Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    response = select(root_client, "suspend_tenants", a, b)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "2 suspended." in response.content.decode()  # type: ignore[attr-defined]
    for t in (a, b):
        t.refresh_from_db()
        assert t.status == TenantStatus.SUSPENDED
        row = AuditLog.objects.get(tenant=t, action="tenant.suspended")
        assert row.ip_address == ADMIN_IP
        assert row.actor == "user:root"
        assert row.user_id is not None
        assert (row.metadata or {})["changes"] == {"status": ["active", "suspended"]}

    select(root_client, "reactivate_tenants", a)
    a.refresh_from_db()
    assert a.status == TenantStatus.ACTIVE
    row = AuditLog.objects.get(tenant=a, action="tenant.reactivated")
    assert (row.ip_address, row.actor) == (ADMIN_IP, "user:root")


def test_action_reports_service_refusals(root_client: Client, make_tenant: Callable[..., Tenant], actor: Actor) -> None:
    from tenants.services import tenant_delete

    t = make_tenant()
    tenant_delete(tenant_id=t.pk, actor=actor)
    response = select(root_client, "reactivate_tenants", t)  # deleted: the service refuses
    page = response.content.decode()  # type: ignore[attr-defined]
    assert "Not changed" in page
    assert "cannot reactivate" in page
    t.refresh_from_db()
    assert t.status == TenantStatus.DELETED
    assert not AuditLog.objects.filter(tenant=t, action="tenant.reactivated").exists()


def test_staff_with_permissions_can_suspend(staff_user: User, tenant: Tenant) -> None:
    client = Client(REMOTE_ADDR="192.0.2.44")
    client.force_login(staff_user)
    select(client, "suspend_tenants", tenant)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED
    row = AuditLog.objects.get(tenant=tenant, action="tenant.suspended")
    assert (row.ip_address, row.actor) == ("192.0.2.44", "user:staff")


def test_mark_deleted_asks_for_confirmation_then_calls_tenant_delete(root_client: Client, tenant: Tenant) -> None:
    device = make_device(tenant)
    response = root_client.post(
        url("tenant", "changelist"), {"action": "mark_deleted", "_selected_action": [str(tenant.pk)]}
    )
    assert response.status_code == 200
    assert "Mark tenants deleted?" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE

    select(root_client, "mark_deleted", tenant, post="yes", reason="customer request")
    tenant.refresh_from_db()
    device.refresh_from_db()
    assert tenant.status == TenantStatus.DELETED
    assert device.revoked_at is not None
    row = AuditLog.objects.get(tenant=tenant, action="tenant.deleted")
    assert row.ip_address == ADMIN_IP
    assert (row.metadata or {})["reason"] == "customer request"
    assert Tenant.objects.filter(pk=tenant.pk).exists()  # the row stays


def test_hard_delete_is_not_offered(root_client: Client, tenant: Tenant) -> None:
    page = root_client.get(url("tenant", "changelist")).content.decode()
    assert "delete_selected" not in page
    assert root_client.get(url("tenant", "delete", tenant.pk)).status_code == 403
    assert root_client.post(url("tenant", "delete", tenant.pk), {"post": "yes"}).status_code == 403
    select(root_client, "delete_selected", tenant, post="yes")
    assert Tenant.objects.filter(pk=tenant.pk).exists()


def test_too_many_rows_for_an_action_are_refused(
    root_client: Client, make_tenant: Callable[..., Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.admin_mixins.MAX_ACTION_ROWS", 2)
    tenants = [make_tenant() for _ in range(3)]
    response = root_client.post(
        url("tenant", "changelist"),
        {"action": "suspend_tenants", "select_across": "1", "index": "0", "_selected_action": [str(tenants[0].pk)]},
        follow=True,
    )
    assert "Select at most 2 rows" in response.content.decode()
    assert not Tenant.objects.filter(status=TenantStatus.SUSPENDED).exists()


def change_form_data(client: Client, tenant: Tenant, **fields: str) -> dict[str, object]:
    """What the browser posts: the form's fields and the (read-only) inlines' management forms."""
    page = client.get(url("tenant", "change", tenant.pk))
    data: dict[str, object] = {"email": tenant.email, "tier": tenant.tier, "security_mode": tenant.security_mode}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    data.update(fields)
    return data


def test_change_form_edit_goes_through_service_with_audit(root_client: Client, tenant: Tenant) -> None:
    make_device(tenant)
    data = change_form_data(
        # status is read-only on the form: a posted value is ignored
        root_client,
        tenant,
        email="Owner@Example.com",
        tier="A",
        security_mode="mobile_only",
        status="suspended",
    )
    response = root_client.post(url("tenant", "change", tenant.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    # The tier is not edited in place: a tier move is requested (moves app), and the task changes it.
    assert (tenant.email, tenant.tier, tenant.security_mode, tenant.status) == (
        "owner@example.com",
        "B",
        "mobile_only",
        "active",
    )
    row = AuditLog.objects.get(tenant=tenant, action="tenant.updated")
    assert row.ip_address == ADMIN_IP
    assert row.actor == "user:root"
    assert (row.metadata or {})["changes"] == {"security_mode": ["node_based", "mobile_only"]}
    move = tenant.moves.get()
    assert (move.from_tier, move.to_tier, move.requested_by, move.status) == ("B", "A", "user:root", "pending")


def test_change_form_without_changes_writes_no_audit(root_client: Client, tenant: Tenant) -> None:
    response = root_client.post(url("tenant", "change", tenant.pk), change_form_data(root_client, tenant))
    assert response.status_code == 302
    assert not AuditLog.objects.filter(tenant=tenant, action="tenant.updated").exists()


def test_change_form_refuses_duplicate_email_in_any_case(
    root_client: Client, tenant: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    other = make_tenant(email="other@example.com")
    data = change_form_data(root_client, other, email="OWNER@example.com")
    response = root_client.post(url("tenant", "change", other.pk), data)
    assert response.status_code == 200
    assert "A tenant with this email already exists." in response.content.decode()
    other.refresh_from_db()
    assert other.email == "other@example.com"


def test_add_form_provisions_through_the_service(root_client: Client) -> None:
    response = root_client.post(
        url("tenant", "add"), {"email": "New@Example.com", "tier": "C", "security_mode": "node_based"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant = Tenant.objects.get(email="new@example.com")
    assert TenantState.objects.filter(tenant=tenant).exists()
    assert TenantKey.objects.filter(tenant=tenant, retired_at__isnull=True).exists()
    row = AuditLog.objects.get(tenant=tenant, action="tenant.created")
    assert (row.ip_address, row.actor) == (ADMIN_IP, "user:root")
    # and the duplicate, in another case, is a form error
    response = root_client.post(
        url("tenant", "add"), {"email": "NEW@example.com", "tier": "C", "security_mode": "node_based"}
    )
    assert response.status_code == 200
    assert Tenant.objects.filter(email="new@example.com").count() == 1


def test_change_page_shows_state_devices_and_subscriptions(root_client: Client, tenant: Tenant) -> None:
    from billing.models import Subscription

    make_device(tenant, name="work laptop")
    Subscription.objects.create(tenant=tenant, tier="B", status="active", stripe_subscription_id="sub_admin_1")
    TenantState.objects.filter(tenant=tenant).update(pod_id="tier-b-7", generation=4)
    page = root_client.get(url("tenant", "change", tenant.pk)).content.decode()
    for text in ("work laptop", "sub_admin_1", "tier-b-7", "cold", ">4<", f"?q={tenant.pk}"):
        assert text in page, text


# -- devices --------------------------------------------------------------------------------------------------


def test_revoke_devices_action(root_client: Client, tenant: Tenant) -> None:
    device, other = make_device(tenant), make_device(tenant, "tablet")
    root_client.post(
        url("device", "changelist"), {"action": "revoke_devices", "_selected_action": [str(device.pk)]}, follow=True
    )
    device.refresh_from_db()
    other.refresh_from_db()
    assert device.revoked_at is not None
    assert other.revoked_at is None
    row = AuditLog.objects.get(action="device.revoked", resource_id=device.pk)
    assert (row.ip_address, row.actor) == (ADMIN_IP, "user:root")
    response = root_client.get(url("device", "changelist"), {"revoked": "yes"})
    assert [d.pk for d in response.context["cl"].result_list] == [device.pk]
    response = root_client.get(url("device", "changelist"), {"revoked": "no", "platform__exact": "ios"})
    assert [d.pk for d in response.context["cl"].result_list] == [other.pk]
    # the device page itself is read-only
    assert root_client.post(url("device", "change", device.pk), {"device_name": "x"}).status_code == 403


def test_device_search_by_tenant_id(root_client: Client, make_tenant: Callable[..., Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    da, _ = make_device(a), make_device(b)
    response = root_client.get(url("device", "changelist"), {"q": str(a.pk)})
    assert [d.pk for d in response.context["cl"].result_list] == [da.pk]
    response = root_client.get(url("device", "changelist"), {"q": str(da.pk)})
    assert [d.pk for d in response.context["cl"].result_list] == [da.pk]


def test_tenant_key_page_never_shows_the_wrapped_key(root_client: Client, tenant: Tenant) -> None:
    key = TenantKey.objects.get(tenant=tenant)
    wrapped = bytes(key.wrapped_key)
    for page in (
        root_client.get(url("tenantkey", "change", key.pk)).content,
        root_client.get(url("tenantkey", "changelist")).content,
    ):
        assert b"wrapped_key" not in page
        assert b"Wrapped key" not in page
        for encoded in (wrapped.hex(), base64.b64encode(wrapped).decode(), repr(wrapped)):
            assert encoded.encode() not in page
        assert key.key_id.encode() in page


def test_metric_filter_and_search(root_client: Client, make_tenant: Callable[..., Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    TenantMetric.objects.create(tenant=a, metric_name="requests", metric_value=1)
    TenantMetric.objects.create(tenant=b, metric_name="storage_mb", metric_value=2)
    response = root_client.get(url("tenantmetric", "changelist"))
    assert "?metric_name=storage_mb" in response.content.decode()
    response = root_client.get(url("tenantmetric", "changelist"), {"metric_name": "storage_mb"})
    assert [m.tenant_id for m in response.context["cl"].result_list] == [b.pk]
    response = root_client.get(url("tenantmetric", "changelist"), {"q": str(a.pk)})
    assert [m.metric_name for m in response.context["cl"].result_list] == ["requests"]


# -- tenant search, filters, ordering, query count ------------------------------------------------------------


def results(client: Client, **params: str) -> list[Tenant]:
    response = client.get(url("tenant", "changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_search_by_email_prefix_and_by_uuid(root_client: Client, make_tenant: Callable[..., Tenant]) -> None:
    alice = make_tenant(email="alice@example.com")
    alicia = make_tenant(email="alicia@example.org")
    make_tenant(email="bob@example.com")
    make_tenant(email="xalice@example.com")  # contains "alice" but does not start with it

    assert {t.pk for t in results(root_client, q="  ALI ")} == {alice.pk, alicia.pk}
    assert [t.pk for t in results(root_client, q="alice@")] == [alice.pk]
    assert [t.pk for t in results(root_client, q=str(alicia.pk))] == [alicia.pk]
    assert [t.pk for t in results(root_client, q=str(alicia.pk).upper())] == [alicia.pk]
    assert results(root_client, q=str(uuid.uuid4())) == []
    assert results(root_client, q="example.com") == []  # a prefix search, not "contains"


def test_search_sql_is_a_prefix_like_on_the_email_index(
    root_client: Client, make_tenant: Callable[..., Tenant]
) -> None:
    make_tenant(email="carol@example.com")
    with CaptureQueriesContext(connection) as ctx:
        results(root_client, q="Car")
    sql = " ".join(q["sql"] for q in ctx.captured_queries if '"tenants"' in q["sql"])
    assert "LIKE 'car%'" in sql
    assert "UPPER(" not in sql
    assert "ILIKE" not in sql.upper()

    from tenants.admin import TenantAdmin

    qs, _ = TenantAdmin(Tenant, admin_site()).get_search_results(None, Tenant.objects.all(), "car")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert "idx_tenants_email" in qs.explain()
    assert "idx_tenants_created" in Tenant.objects.order_by("-created_at", "-id")[:50].explain()


def admin_site() -> object:
    from django.contrib import admin

    return admin.site


def test_filters_on_tier_status_and_state(
    root_client: Client, make_tenant: Callable[..., Tenant], actor: Actor
) -> None:
    from tenants.services import tenant_state_transition, tenant_suspend

    a = make_tenant(tier="A")
    b = make_tenant(tier="B")
    c = make_tenant(tier="C")
    tenant_suspend(tenant_id=b.pk, actor=actor)
    tenant_state_transition(tenant_id=c.pk, to_state="warm", generation=1, actor=actor)

    assert [t.pk for t in results(root_client, tier__exact="A")] == [a.pk]
    assert [t.pk for t in results(root_client, status__exact="suspended")] == [b.pk]
    assert [t.pk for t in results(root_client, state__state__exact="warm")] == [c.pk]
    assert {t.pk for t in results(root_client, state__state__exact="cold")} == {a.pk, b.pk}
    assert [t.pk for t in results(root_client, tier__exact="C", state__state__exact="warm")] == [c.pk]
    page = root_client.get(url("tenant", "changelist")).content.decode()
    for link in ("?tier__exact=A", "?status__exact=suspended", "?state__state__exact=archived"):
        assert link in page


def test_changelist_is_newest_first_and_shows_state(root_client: Client, make_tenant: Callable[..., Tenant]) -> None:
    tenants = [make_tenant() for _ in range(3)]
    listed = results(root_client)
    assert [t.pk for t in listed] == [t.pk for t in reversed(tenants)]
    page = root_client.get(url("tenant", "changelist")).content.decode()
    assert "cold" in page
    assert "date_hierarchy" not in page


# session, user, savepoint + estimate + release, (exact count while small), the page of rows: nothing per row
CHANGELIST_MAX_QUERIES = 8


def test_tenant_changelist_query_count_does_not_grow_with_rows(
    root_client: Client, make_tenant: Callable[..., Tenant], django_assert_max_num_queries: Callable
) -> None:
    searched = {"q": "t-", "tier__exact": "B", "state__state__exact": "cold"}
    for _ in range(3):
        make_device(make_tenant())
    root_client.get(url("tenant", "changelist"))  # warm the content-type cache
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        root_client.get(url("tenant", "changelist"))
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        root_client.get(url("tenant", "changelist"), searched)
    for _ in range(30):
        make_device(make_tenant())
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = root_client.get(url("tenant", "changelist"))
    assert len(response.context["cl"].result_list) == 33
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
        response = root_client.get(url("tenant", "changelist"), searched)
    assert len(response.context["cl"].result_list) == 33


@pytest.mark.parametrize("model", [m for m in MODELS if m != "tenant"])
def test_other_changelists_query_count_does_not_grow_with_rows(
    root_client: Client,
    make_tenant: Callable[..., Tenant],
    django_assert_max_num_queries: Callable,
    model: str,
) -> None:
    def add_rows() -> None:
        for _ in range(3):
            t = make_tenant()
            make_device(t)
            TenantMetric.objects.create(tenant=t, metric_name="requests", metric_value=1)

    add_rows()
    root_client.get(url(model, "changelist"))
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES + 1):  # + the filter's distinct values
        root_client.get(url(model, "changelist"))
    for _ in range(10):
        add_rows()
    with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES + 1):
        response = root_client.get(url(model, "changelist"))
    assert len(response.context["cl"].result_list) >= 11


# -- the estimating paginator ---------------------------------------------------------------------------------


def bulk_tenants(n: int, *, tier: str = "C", prefix: str = "bulk") -> None:
    Tenant.objects.bulk_create([Tenant(email=f"{prefix}{i}@example.com", tier=tier) for i in range(n)], batch_size=5000)


def counts_run(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_paginator_estimates_large_tables_on_postgresql() -> None:
    n = EXACT_COUNT_THRESHOLD + 2000
    bulk_tenants(n - 1000, tier="C")
    bulk_tenants(1000, tier="A", prefix="premium")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenants")

    with CaptureQueriesContext(connection) as ctx:
        unfiltered = EstimatedCountPaginator(Tenant.objects.select_related("state").order_by("-created_at"), 50)
        total = unfiltered.count
    assert counts_run(ctx) == []  # no COUNT(*) over the table
    assert any("reltuples" in q["sql"] for q in ctx.captured_queries)
    assert abs(total - n) <= n * 0.05
    assert unfiltered.is_estimate
    assert unfiltered.num_pages == -(-total // 50)

    with CaptureQueriesContext(connection) as ctx:
        filtered = EstimatedCountPaginator(Tenant.objects.filter(tier="C").order_by("pk"), 50).count
    assert counts_run(ctx) == []
    assert any("EXPLAIN" in q["sql"] for q in ctx.captured_queries)
    assert abs(filtered - (n - 1000)) <= n * 0.1

    # a small filtered result is counted exactly
    with CaptureQueriesContext(connection) as ctx:
        small = EstimatedCountPaginator(Tenant.objects.filter(tier="A").order_by("pk"), 50)
        assert small.count == 1000
    assert len(counts_run(ctx)) == 1
    assert not small.is_estimate
    assert EstimatedCountPaginator(Tenant.objects.filter(email__startswith="premium99").order_by("pk"), 50).count == 11


def test_paginator_scales_stale_statistics_by_table_size() -> None:
    """Rows added after the last ANALYZE are seen through the relation's size, as the planner sees them."""
    bulk_tenants(EXACT_COUNT_THRESHOLD)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenants")
    bulk_tenants(EXACT_COUNT_THRESHOLD, prefix="later")
    with CaptureQueriesContext(connection) as ctx:
        total = EstimatedCountPaginator(Tenant.objects.order_by("pk"), 50).count
    assert counts_run(ctx) == []
    assert total > EXACT_COUNT_THRESHOLD  # more than the stale reltuples...
    planner = json.loads(Tenant.objects.explain(format="json"))[0]["Plan"]["Plan Rows"]
    assert abs(total - planner) <= 0.01 * planner  # ...and what the planner itself assumes


def test_paginator_counts_exactly_on_small_or_unanalysed_tables(make_tenant: Callable[..., Tenant]) -> None:
    for _ in range(3):
        make_tenant()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenants")
    with CaptureQueriesContext(connection) as ctx:
        assert EstimatedCountPaginator(Tenant.objects.order_by("pk"), 50).count == 3
    assert len(counts_run(ctx)) == 1
    assert EstimatedCountPaginator(Tenant.objects.filter(tier="B").order_by("pk"), 50).count == 3
    assert EstimatedCountPaginator(Tenant.objects.filter(tier="A").order_by("pk"), 50).count == 0


def test_paginator_counts_on_other_databases(
    make_tenant: Callable[..., Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant()
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with CaptureQueriesContext(connection) as ctx:
        assert estimated_count(Tenant.objects.all(), exact_threshold=0) == 1
    assert len(counts_run(ctx)) == 1
    assert not any("reltuples" in q["sql"] or "EXPLAIN" in q["sql"] for q in ctx.captured_queries)


def test_paginator_on_a_list() -> None:
    assert EstimatedCountPaginator(list(range(7)), 5).count == 7


def test_big_changelists_use_the_estimating_paginator() -> None:
    from django.contrib import admin

    for model in (Tenant, Device, AuditLog, TenantKey, TenantMetric):
        model_admin = admin.site._registry[model]
        assert model_admin.paginator is EstimatedCountPaginator, model
        assert model_admin.show_full_result_count is False
        assert model_admin.show_facets == admin.ShowFacets.NEVER
        assert not model_admin.date_hierarchy
