"""Django admin for staff, built for a million tenants on PostgreSQL.

- Every big changelist uses `EstimatedCountPaginator` (no `COUNT(*)` over the table), no full-result count and no
  facet counts; filters are on choice fields or indexed columns; search runs only indexed lookups.
- Tenant status changes only through actions that call the lifecycle services; other tenant edits go through
  `tenants.admin_services.tenant_update`. Each leaves an audit row with the admin's name and address.
- Rows that services, tasks and Stripe write (audit log, keys, metrics, subscriptions, billing events) are view-only.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html_join

from archival.admin_actions import archive_now, restore
from billing.models import Subscription
from core.admin_mixins import (
    MAX_ACTION_ROWS,
    ActionsOnlyAdminMixin,
    BigTableAdminMixin,
    TenantIdSearchMixin,
    ViewOnlyAdminMixin,
    indexed_values_filter,
    parse_uuid,
    run_for_each,
)
from core.audit import Actor
from core.emails import normalize_email, normalize_email_prefix
from core.errors import PlatformError
from moves.admin_actions import move_to_tier, tenant_moves_panel
from moves.services import tenant_move
from tenants.admin_services import EDITABLE_FIELDS, tenant_update
from tenants.device_services import device_revoke
from tenants.metric_charts import metrics_chart
from tenants.models import AuditLog, Device, Tenant, TenantKey, TenantMetric, TenantState
from tenants.services import tenant_delete, tenant_provision, tenant_reactivate, tenant_suspend


# An action runs one service call (one transaction, one audit row) per tenant; beyond this many rows an admin
# request would run for minutes, so the action refuses and asks for a narrower selection (or a management command).
class TenantAdminForm(forms.ModelForm):
    # A plain text field: core.emails decides what an email is, for the admin as for the API.
    email = forms.CharField(max_length=255)

    class Meta:
        model = Tenant
        fields = EDITABLE_FIELDS

    def clean_email(self) -> str:
        try:
            email = normalize_email(self.cleaned_data["email"])
        except PlatformError as exc:
            raise forms.ValidationError(exc.fields.get("email") or exc.message) from exc
        # Emails are stored normalised (core.emails), so an exact match is the indexed one-mailbox check.
        if Tenant.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A tenant with this email already exists.")
        return email


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on the tenant page but written elsewhere: devices register through the API (key validation) and
    are revoked from the device list; Stripe is the source of truth for subscriptions."""

    ordering = ("-created_at",)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeviceInline(ReadOnlyInline):
    model = Device
    fields = ("device_name", "platform", "created_at", "last_seen_at", "revoked_at")
    readonly_fields = fields


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fields = (
        "tier",
        "status",
        "stripe_subscription_id",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    )
    readonly_fields = fields


@admin.register(Tenant)
class TenantAdmin(BigTableAdminMixin, admin.ModelAdmin):
    form = TenantAdminForm
    list_display = ("id", "email", "tier", "status", "state_name", "created_at")
    list_display_links = ("id", "email")
    list_select_related = ("state",)
    # Served by idx_tenants_created (created_at, id), scanned backwards; only indexed columns can be sorted on.
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    list_filter = ("tier", "status", ("state__state", admin.ChoicesFieldListFilter))
    search_fields = ("email",)  # shows the search box; the lookups are in get_search_results
    search_help_text = "A tenant id (UUID), or the beginning of an email address."
    actions = ("suspend_tenants", "reactivate_tenants", "mark_deleted", archive_now, restore, move_to_tier)
    inlines = (DeviceInline, SubscriptionInline)
    state_fields = ("state_name", "state_generation", "state_pod_id", "state_last_access_at")
    readonly_fields = (
        "id",
        "status",
        "created_at",
        "updated_at",
        *state_fields,
        "tier_moves",
        "related_links",
        "metrics_chart",
    )

    # -- queries ---------------------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).select_related("state")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Tenant], search_term: str
    ) -> tuple[QuerySet[Tenant], bool]:
        """Indexed lookups only: a UUID is the tenant id (primary key); anything else is an email prefix."""
        term = search_term.strip()
        if not term:
            return queryset, False
        tenant_id = parse_uuid(term)
        if tenant_id is not None:
            return queryset.filter(pk=tenant_id), False
        # Emails are stored normalised; idx_tenants_email (varchar_pattern_ops) serves LIKE 'prefix%'.
        return queryset.filter(email__startswith=normalize_email_prefix(term)), False

    # -- form ------------------------------------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:
            return ((None, {"fields": EDITABLE_FIELDS}),)
        return (
            (None, {"fields": ("id", "email", "tier", "security_mode", "status", "created_at", "updated_at")}),
            ("State", {"fields": self.state_fields}),
            ("Tier moves", {"fields": ("tier_moves",)}),
            ("Related", {"fields": ("related_links",)}),
            ("Metrics, last day (scraped from its pod while it is hot)", {"fields": ("metrics_chart",)}),
        )

    @admin.display(description="Per-tenant metrics")
    def metrics_chart(self, obj: Tenant) -> str:
        return metrics_chart(tenant_id=obj.pk)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> Any:
        return self.inlines if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a hard delete would be wrong: status `deleted` is the deletion (action "mark deleted")

    def has_soft_delete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.delete_tenant")

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:
        actor = Actor.from_request(request)
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
            tier = fields.pop("tier", None)
            if fields:
                tenant_update(tenant_id=obj.pk, actor=actor, **fields)
            if tier is not None:  # a new tier is a move (evict, copy, switch, warm), run by its task
                move = tenant_move(tenant_id=obj.pk, tier=tier, actor=actor, reason="tier changed on the tenant form")
                self.message_user(request, f"Move to tier {tier} started ({move.status}).", messages.INFO)
            return
        tenant = tenant_provision(
            email=form.cleaned_data["email"],
            tier=form.cleaned_data["tier"],
            security_mode=form.cleaned_data["security_mode"],
            actor=actor,
        )
        # The admin goes on with `obj` (log entry, redirect): make it the row the service created.
        obj.pk = tenant.pk
        obj.status = tenant.status
        obj._state.adding = False
        obj._state.db = tenant._state.db

    # -- display ---------------------------------------------------------------------------------------------

    @staticmethod
    def _state(obj: Tenant) -> TenantState | None:
        try:
            return obj.state
        except TenantState.DoesNotExist:
            return None

    @admin.display(description="state")
    def state_name(self, obj: Tenant) -> str:
        state = self._state(obj)
        return state.state if state else "-"

    @admin.display(description="generation")
    def state_generation(self, obj: Tenant) -> Any:
        state = self._state(obj)
        return state.generation if state else "-"

    @admin.display(description="pod")
    def state_pod_id(self, obj: Tenant) -> str:
        state = self._state(obj)
        return (state.pod_id or "-") if state else "-"

    @admin.display(description="last access")
    def state_last_access_at(self, obj: Tenant) -> Any:
        state = self._state(obj)
        return state.last_access_at if state else "-"

    @admin.display(description="moves")
    def tier_moves(self, obj: Tenant) -> str:
        return tenant_moves_panel(obj.pk)

    @admin.display(description="history")
    def related_links(self, obj: Tenant) -> str:
        links = [
            ("tenants_auditlog_changelist", "audit log"),
            ("tenants_device_changelist", "devices"),
            ("tenants_tenantkey_changelist", "keys"),
            ("tenants_tenantmetric_changelist", "metrics"),
            ("billing_billingevent_changelist", "billing events"),
            ("archival_archivaljob_changelist", "archival jobs"),
            ("moves_move_changelist", "tier moves"),
        ]
        rows = []
        for name, label in links:
            try:
                rows.append((reverse(f"admin:{name}"), obj.pk, label))
            except NoReverseMatch:  # that app's admin is not registered
                continue
        return format_html_join(" · ", '<a href="{}?q={}">{}</a>', rows)

    # -- actions ---------------------------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Suspend selected tenants", permissions=["change"])
    def suspend_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        actor = Actor.from_request(request)
        run_for_each(self, request, queryset, lambda pk: tenant_suspend(tenant_id=pk, actor=actor), "suspended")

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        actor = Actor.from_request(request)
        run_for_each(self, request, queryset, lambda pk: tenant_reactivate(tenant_id=pk, actor=actor), "reactivated")

    @admin.action(description="Mark selected tenants deleted", permissions=["soft_delete"])
    def mark_deleted(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        """Status `deleted` (devices revoked, rows kept for audit and billing), after a confirmation page."""
        if request.POST.get("post") != "yes":
            selected = list(queryset.order_by()[: MAX_ACTION_ROWS + 1])
            context = {
                **self.admin_site.each_context(request),
                "title": "Mark tenants deleted?",
                "opts": self.model._meta,
                "tenants": selected[:MAX_ACTION_ROWS],
                "too_many": len(selected) > MAX_ACTION_ROWS,
                "max_rows": MAX_ACTION_ROWS,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/tenants/tenant/mark_deleted_confirmation.html", context)
        actor = Actor.from_request(request)
        reason = (request.POST.get("reason") or "").strip()[:500]
        run_for_each(
            self, request, queryset, lambda pk: tenant_delete(tenant_id=pk, actor=actor, reason=reason), "deleted"
        )
        return None


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "Active"), ("yes", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Device)
class DeviceAdmin(BigTableAdminMixin, TenantIdSearchMixin, ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "device_name", "platform", "tenant", "last_seen_at", "revoked_at", "created_at")
    list_display_links = ("id", "device_name")
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-id")  # idx_devices_created
    sortable_by = ("created_at", "last_seen_at")
    list_filter = ("platform", RevokedFilter)
    raw_id_fields = ("tenant",)
    search_help_text = "Exact id of the device or of its tenant (UUID)."
    actions = ("revoke_devices",)

    @admin.action(description="Revoke selected devices", permissions=["change"])
    def revoke_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        actor = Actor.from_request(request)
        run_for_each(self, request, queryset, lambda pk: device_revoke(device_id=pk, actor=actor), "revoked")


@admin.register(AuditLog)
class AuditLogAdmin(BigTableAdminMixin, TenantIdSearchMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: no add, change or delete."""

    list_display = ("created_at", "action", "actor", "tenant_id", "resource_type", "resource_id", "ip_address")
    list_display_links = ("created_at", "action")
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    list_filter = (indexed_values_filter("action", "action"),)
    raw_id_fields = ("tenant",)
    actions = None
    search_help_text = "Exact id of the audit row or of its tenant (UUID)."


@admin.register(TenantKey)
class TenantKeyAdmin(BigTableAdminMixin, TenantIdSearchMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    """Key metadata only: the wrapped key bytes are never shown."""

    fields = ("id", "tenant", "key_id", "master_key_id", "created_at", "retired_at")
    readonly_fields = fields
    list_display = ("key_id", "tenant_id", "master_key_id", "created_at", "retired_at")
    ordering = ("-created_at", "-id")  # idx_tenant_keys_created
    sortable_by = ("created_at",)
    list_filter = (("retired_at", admin.EmptyFieldListFilter),)
    raw_id_fields = ("tenant",)
    search_help_text = "Exact id of the key row or of its tenant (UUID)."
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet[TenantKey]:
        return super().get_queryset(request).defer("wrapped_key")


@admin.register(TenantMetric)
class TenantMetricAdmin(BigTableAdminMixin, TenantIdSearchMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("recorded_at", "metric_name", "metric_value", "tenant_id")
    ordering = ("-recorded_at", "-id")  # idx_tenant_metrics_recorded (idx_tenant_metrics_tenant_time per tenant)
    sortable_by = ("recorded_at",)
    list_filter = (indexed_values_filter("metric_name", "metric"),)
    raw_id_fields = ("tenant",)
    search_help_text = "Exact id of the metric row or of its tenant (UUID)."
    actions = None
