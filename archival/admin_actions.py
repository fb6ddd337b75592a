"""Admin actions for the Tenant changelist: "archive now" and "restore" enqueue the tasks through the services."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from archival import services
from core.admin_mixins import run_for_each
from core.audit import Actor


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
    _link_progress(modeladmin, request)


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
    _link_progress(modeladmin, request)


def _link_progress(modeladmin: admin.ModelAdmin, request: HttpRequest) -> None:
    """The jobs run in the worker: say where their progress shows."""
    modeladmin.message_user(
        request,
        format_html(
            'They run in the background worker: follow them in <a href="{}">archival jobs</a>.',
            reverse("admin:archival_archivaljob_changelist"),
        ),
        messages.INFO,
    )
