"""Billing admin: subscriptions and billing events are listed, filtered and searched, and are view-only."""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import BillingEvent, Subscription
from core.admin_paginator import EstimatedCountPaginator
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(make_tenant: Callable[..., Tenant]) -> dict[str, object]:
    a, b = make_tenant(tier="A"), make_tenant(tier="C")
    return {
        "a": a,
        "b": b,
        "subscription": Subscription.objects.create(
            tenant=a, tier="A", status="active", stripe_subscription_id="sub_A1", stripe_customer_id="cus_A"
        ),
        "subscription_b": Subscription.objects.create(
            tenant=b, tier="C", status="past_due", stripe_subscription_id="sub_C1", cancel_at_period_end=True
        ),
        "billingevent": BillingEvent.objects.create(
            tenant=a,
            event_type="invoice.paid",
            stripe_event_id="evt_paid_1",
            amount_cents=1200,
            processing_status="processed",
        ),
        "billingevent_b": BillingEvent.objects.create(
            tenant=b,
            event_type="invoice.payment_failed",
            stripe_event_id="evt_failed_1",
            processing_status="failed",
            last_error="boom",
        ),
    }


def url(model: str, view: str, *args: object) -> str:
    return reverse(f"admin:billing_{model}_{view}", args=args)


def listed(client: Client, model: str, **params: str) -> list[object]:
    response = client.get(url(model, "changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize("model", ["subscription", "billingevent"])
def test_pages_render_for_superuser_and_are_view_only(
    admin_client_root: Client, rows: dict[str, object], model: str
) -> None:
    obj = rows[model]
    assert admin_client_root.get(url(model, "changelist")).status_code == 200
    page = admin_client_root.get(url(model, "change", obj.pk))  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client_root.get(url(model, "add")).status_code == 403
    assert admin_client_root.post(url(model, "change", obj.pk), {"status": "canceled"}).status_code == 403  # type: ignore[attr-defined]
    assert admin_client_root.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403  # type: ignore[attr-defined]
    assert type(obj).objects.filter(pk=obj.pk).exists()  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", ["subscription", "billingevent"])
def test_staff_without_permission_is_refused(
    staff_without_permissions: User, rows: dict[str, object], model: str
) -> None:
    client = Client()
    client.force_login(staff_without_permissions)
    assert client.get(url(model, "changelist")).status_code == 403
    assert client.get(url(model, "change", rows[model].pk)).status_code == 403  # type: ignore[attr-defined]
    assert client.get(url(model, "add")).status_code == 403
    assert Client().get(url(model, "changelist")).status_code == 302  # anonymous: to the login page


def test_staff_with_permissions_can_view(staff_user: User, rows: dict[str, object]) -> None:
    client = Client()
    client.force_login(staff_user)
    assert client.get(url("subscription", "changelist")).status_code == 200
    assert client.get(url("billingevent", "change", rows["billingevent"].pk)).status_code == 200  # type: ignore[attr-defined]


def test_subscription_filters_and_search(admin_client_root: Client, rows: dict[str, object]) -> None:
    sub, sub_b, a = rows["subscription"], rows["subscription_b"], rows["a"]
    assert listed(admin_client_root, "subscription", tier__exact="A") == [sub]
    assert listed(admin_client_root, "subscription", status__exact="past_due") == [sub_b]
    assert listed(admin_client_root, "subscription", cancel_at_period_end__exact="1") == [sub_b]
    assert listed(admin_client_root, "subscription", q=str(a.pk)) == [sub]  # type: ignore[attr-defined]
    assert listed(admin_client_root, "subscription", q=str(sub_b.pk)) == [sub_b]  # type: ignore[attr-defined]
    assert listed(admin_client_root, "subscription", q=" sub_C1 ") == [sub_b]
    assert listed(admin_client_root, "subscription", q="sub_") == []  # exact Stripe ids only (indexed)


def test_billing_event_filters_and_search(admin_client_root: Client, rows: dict[str, object]) -> None:
    paid, failed, b = rows["billingevent"], rows["billingevent_b"], rows["b"]
    assert listed(admin_client_root, "billingevent", processing_status__exact="failed") == [failed]
    assert listed(admin_client_root, "billingevent", event_type="invoice.paid") == [paid]
    page = admin_client_root.get(url("billingevent", "changelist")).content.decode()
    assert "?event_type=invoice.payment_failed" in page
    assert listed(admin_client_root, "billingevent", q=str(b.pk)) == [failed]  # type: ignore[attr-defined]
    assert listed(admin_client_root, "billingevent", q="evt_paid_1") == [paid]


def test_tenant_page_shows_subscriptions_inline(admin_client_root: Client, rows: dict[str, object]) -> None:
    page = admin_client_root.get(reverse("admin:tenants_tenant_change", args=[rows["a"].pk]))  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert "sub_A1" in page.content.decode()


def test_billing_admins_use_the_estimating_paginator() -> None:
    from django.contrib import admin

    for model in (Subscription, BillingEvent):
        model_admin = admin.site._registry[model]
        assert model_admin.paginator is EstimatedCountPaginator
        assert model_admin.show_full_result_count is False
        assert model_admin.raw_id_fields == ("tenant",)


# --- the webhook's events in the admin ----------------------------------------------------------------------------


@pytest.fixture
def stored_events(settings: object) -> dict[str, BillingEvent]:
    from billing.intake import event_store
    from billing.tests.conftest import Customer

    customer = Customer()
    failed = customer.subscription("created", price="price_tier_b")  # before its checkout: waits, failed
    rows = {}
    for name, evt in (("checkout", customer.checkout()), ("failed", failed)):
        rows[name], _ = event_store(event=evt)
    BillingEvent.objects.filter(pk=rows["failed"].pk).update(processing_status="failed", attempts=10, last_error="x")
    return rows


def test_event_page_shows_the_payload(admin_client_root: Client, stored_events: dict[str, BillingEvent]) -> None:
    row = stored_events["checkout"]
    page = admin_client_root.get(url("billingevent", "change", row.pk)).content.decode()
    assert "checkout.session.completed" in page
    assert "&quot;customer_details&quot;" in page and row.stripe_event_id in page  # readable, escaped


def test_event_list_filters_by_type_status_and_date(
    admin_client_root: Client, stored_events: dict[str, BillingEvent]
) -> None:
    failed = stored_events["failed"]
    assert listed(admin_client_root, "billingevent", processing_status__exact="failed") == [
        BillingEvent.objects.get(pk=failed.pk)
    ]
    checkouts = listed(admin_client_root, "billingevent", event_type="checkout.session.completed")
    assert checkouts == [BillingEvent.objects.get(pk=stored_events["checkout"].pk)]
    today = {"created_at__gte": "2000-01-01 00:00:00+00:00", "created_at__lt": "2999-01-01 00:00:00+00:00"}
    assert len(listed(admin_client_root, "billingevent", **today)) == 2
    assert listed(admin_client_root, "billingevent", created_at__gte="2999-01-01 00:00:00+00:00") == []


@pytest.mark.django_db(transaction=True)
def test_process_again_runs_a_failed_event_past_the_limit(
    admin_client_root: Client, stored_events: dict[str, BillingEvent], settings: object
) -> None:
    from billing.tests.conftest import PRICES

    settings.STRIPE_PRICE_TIERS = PRICES  # type: ignore[attr-defined]
    from billing.processing import event_process

    event_process(event_id=stored_events["checkout"].pk)  # the customer exists now
    failed = stored_events["failed"]
    response = admin_client_root.post(
        url("billingevent", "changelist"), {"action": "process_again", "_selected_action": [str(failed.pk)]}
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.processing_status, failed.attempts) == ("processed", 11)


def test_process_again_needs_the_change_permission(
    stored_events: dict[str, BillingEvent], staff_without_permissions: User
) -> None:
    from django.contrib.auth.models import Permission

    viewer = staff_without_permissions
    viewer.user_permissions.set(Permission.objects.filter(codename="view_billingevent"))
    client = Client()
    client.force_login(viewer)
    page = client.get(url("billingevent", "changelist"))
    assert page.status_code == 200 and "process_again" not in page.content.decode()
    failed = stored_events["failed"]
    client.post(url("billingevent", "changelist"), {"action": "process_again", "_selected_action": [str(failed.pk)]})
    failed.refresh_from_db()
    assert failed.processing_status == "failed"
