"""Admin actions for the Tenant changelist: "archive now" and "restore" enqueue the tasks through the services."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from archival import services
from tenants.admin_mixins import run_for_each
from tenants.audit import Actor


@admin.action(description="Archive now (cold tenants)", permissions=["change"])
def archive_now(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    actor = Actor.from_request(request)
    run_for_each(
        modeladmin,
        request,
        queryset,
        lambda pk: services.archive_request(tenant_id=pk, actor=actor),
        "archive(s) enqueued",
    )


@admin.action(description="Restore from archive", permissions=["change"])
def restore(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    actor = Actor.from_request(request)
    run_for_each(
        modeladmin,
        request,
        queryset,
        lambda pk: services.restore_request(tenant_id=pk, actor=actor),
        "restore(s) enqueued",
    )
