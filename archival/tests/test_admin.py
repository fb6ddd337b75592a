"""Archival jobs admin: list, filters, search by id; job pages are view-only."""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from archival.models import ArchivalJob
from core.admin_paginator import EstimatedCountPaginator
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(make_tenant: Callable[..., Tenant]) -> dict[str, object]:
    a, b = make_tenant(), make_tenant()
    return {
        "a": a,
        "b": b,
        "archive": ArchivalJob.objects.create(tenant=a, job_type="archive", status="completed", data_size_mb=12),
        "restore": ArchivalJob.objects.create(tenant=b, job_type="restore", status="failed", error_message="x"),
    }


def url(view: str, *args: object) -> str:
    return reverse(f"admin:archival_archivaljob_{view}", args=args)


def listed(client: Client, **params: str) -> list[object]:
    response = client.get(url("changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_pages_render_for_superuser_and_job_pages_are_view_only(
    admin_client_root: Client, jobs: dict[str, object]
) -> None:
    job = jobs["archive"]
    assert admin_client_root.get(url("changelist")).status_code == 200
    page = admin_client_root.get(url("change", job.pk))  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client_root.get(url("add")).status_code == 403
    assert admin_client_root.post(url("change", job.pk), {"status": "pending"}).status_code == 403  # type: ignore[attr-defined]
    assert admin_client_root.post(url("delete", job.pk), {"post": "yes"}).status_code == 403  # type: ignore[attr-defined]
    job.refresh_from_db()  # type: ignore[attr-defined]
    assert job.status == "completed"  # type: ignore[attr-defined]


def test_staff_without_permission_is_refused(staff_without_permissions: User, jobs: dict[str, object]) -> None:
    client = Client()
    client.force_login(staff_without_permissions)
    assert client.get(url("changelist")).status_code == 403
    assert client.get(url("change", jobs["archive"].pk)).status_code == 403  # type: ignore[attr-defined]
    assert client.get(url("add")).status_code == 403
    assert Client().get(url("changelist")).status_code == 302


def test_filters_and_search(admin_client_root: Client, jobs: dict[str, object]) -> None:
    archive, restore = jobs["archive"], jobs["restore"]
    assert listed(admin_client_root, job_type__exact="archive") == [archive]
    assert listed(admin_client_root, status__exact="failed") == [restore]
    assert listed(admin_client_root, job_type__exact="restore", status__exact="completed") == []
    assert listed(admin_client_root, q=str(jobs["a"].pk)) == [archive]  # type: ignore[attr-defined]
    assert listed(admin_client_root, q=str(restore.pk)) == [restore]  # type: ignore[attr-defined]
    assert listed(admin_client_root, q="not-a-uuid") == []
    assert listed(admin_client_root) == [restore, archive]  # newest first


def test_archival_admin_is_built_for_big_tables() -> None:
    from django.contrib import admin

    model_admin = admin.site._registry[ArchivalJob]
    assert model_admin.paginator is EstimatedCountPaginator
    assert model_admin.show_full_result_count is False
    assert model_admin.raw_id_fields == ("tenant",)
