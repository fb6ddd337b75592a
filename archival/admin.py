"""Archival jobs admin: list, filters, view-only job pages.

Jobs are created and advanced by the archival services and tasks, never edited by hand. `ArchivalJobAdmin.actions` is
the place for the "archive now" / "restore" actions: add them as `@admin.action(permissions=["change"])` methods that
call the archival services with `Actor.from_request(request)` (see `tenants.admin.run_for_each`); the changelist
already offers actions to users with the change permission while the job pages stay read-only.
"""

from django.contrib import admin
from django.http import HttpRequest

from archival.models import ArchivalJob, ArchiveDrill
from core.admin_mixins import ActionsOnlyAdminMixin, BigTableAdminMixin, TenantIdSearchMixin


@admin.register(ArchivalJob)
class ArchivalJobAdmin(BigTableAdminMixin, TenantIdSearchMixin, ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "job_type",
        "status",
        "tenant_id",
        "data_size_mb",
        "attempts",
        "created_at",
        "started_at",
        "completed_at",
    )
    list_display_links = ("id", "job_type")
    ordering = ("-created_at", "-id")  # idx_archival_jobs_created, then an incremental sort on id
    sortable_by = ("created_at",)
    list_filter = ("job_type", "status")
    raw_id_fields = ("tenant",)
    search_help_text = "Job or tenant id (UUID)."
    # Actions ("archive now", "restore") are added by the archival capability; see the module docstring.
    actions: tuple[str, ...] = ()


@admin.register(ArchiveDrill)
class ArchiveDrillAdmin(admin.ModelAdmin):
    """Archive drills (beat or `verify_archives`): read-only; a failed one lists its archives and errors."""

    list_display = ("started_at", "status", "sample_size", "checked", "failed", "completed_at")
    list_filter = ("status",)
    ordering = ("-started_at",)
    readonly_fields = ("id", "status", "sample_size", "checked", "failed", "failures", "started_at", "completed_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ArchiveDrill | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ArchiveDrill | None = None) -> bool:
        return False
