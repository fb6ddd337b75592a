"""Tier moves in the admin: a list that stays cheap at a million rows (as the other big lists), view-only pages.

Moves are started from the tenant list ("Move to tier…"), the tenant form (a new tier), the commands, the API or
billing, never by editing a row here. Search: a UUID matches the move id or the tenant id; anything else is the
beginning of a tenant's email (idx_tenants_email, then idx_tenant_moves_tenant).
"""

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from core.admin_mixins import BigTableAdminMixin, ViewOnlyAdminMixin, parse_uuid
from core.emails import normalize_email_prefix
from moves.models import Move


@admin.register(Move)
class MoveAdmin(BigTableAdminMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant_email",
        "from_tier",
        "to_tier",
        "status",
        "step",
        "failed_step",
        "requested_by",
        "created_at",
        "duration_ms",
    )
    list_display_links = ("id",)
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-id")  # idx_tenant_moves_created, scanned backwards
    sortable_by = ("created_at",)
    list_filter = ("status", "to_tier", "from_tier", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=tenant__id",)  # shows the search box; the lookups are in get_search_results
    search_help_text = "A move or tenant id (UUID), or the beginning of the tenant's email address."
    raw_id_fields = ("tenant",)
    fields = (
        "id",
        "tenant",
        "from_tier",
        "to_tier",
        "status",
        "step",
        "failed_step",
        "error",
        "reason",
        "requested_by",
        "from_state",
        "old_generation",
        "new_generation",
        "old_pod_id",
        "new_pod_id",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "duration_ms",
        "detail",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        value = parse_uuid(term)
        if value is not None:
            return queryset.filter(Q(pk=value) | Q(tenant_id=value)), False
        return queryset.filter(tenant__email__startswith=normalize_email_prefix(term)), False

    @admin.display(description="tenant")
    def tenant_email(self, obj: Move) -> str:
        return obj.tenant.email
