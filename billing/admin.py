"""Billing admin: subscriptions and Stripe events are view-only (Stripe and the webhook handlers write them); a
stored event can be sent through processing again ("Process again")."""

import json
from typing import ClassVar

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from billing.admin_actions import process_again
from billing.models import BillingEvent, StripeReconciliation, Subscription
from core.admin_mixins import (
    ActionsOnlyAdminMixin,
    BigTableAdminMixin,
    ViewOnlyAdminMixin,
    indexed_values_filter,
    parse_uuid,
)


class StripeIdSearchMixin:
    """Indexed search only: a UUID is the row id or the tenant id; anything else is an exact Stripe id."""

    # Shows the search box; the lookups are in get_search_results.
    search_fields: ClassVar[list[str] | tuple[str, ...]] = ("=tenant__id",)
    stripe_id_field: ClassVar[str] = ""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        value = parse_uuid(term)
        if value is not None:
            return queryset.filter(Q(pk=value) | Q(tenant_id=value)), False
        return queryset.filter(**{self.stripe_id_field: term}), False


@admin.register(Subscription)
class SubscriptionAdmin(BigTableAdminMixin, StripeIdSearchMixin, ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "tier",
        "status",
        "stripe_subscription_id",
        "current_period_end",
        "cancel_at_period_end",
        "created_at",
    )
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    list_filter = ("tier", "status", "cancel_at_period_end")
    raw_id_fields = ("tenant",)
    stripe_id_field = "stripe_subscription_id"  # unique index idx_subscriptions_stripe
    search_help_text = "Subscription or tenant id (UUID), or a Stripe subscription id (sub_…)."
    actions = None


@admin.register(BillingEvent)
class BillingEventAdmin(BigTableAdminMixin, StripeIdSearchMixin, ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "processing_status",
        "tenant_id",
        "stripe_event_id",
        "amount_cents",
        "currency",
        "attempts",
        "processed_at",
        "last_error",
    )
    list_display_links = ("created_at", "event_type")
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    list_filter = (
        "processing_status",
        indexed_values_filter("event_type", "event type"),
        ("created_at", admin.DateFieldListFilter),  # idx_billing_events_created
    )
    raw_id_fields = ("tenant",)
    stripe_id_field = "stripe_event_id"  # unique
    search_help_text = "Event or tenant id (UUID), or a Stripe event id (evt_…)."
    actions = (process_again,)
    exclude = ("payload", "metadata")
    readonly_fields = ("payload_json",)

    @admin.display(description="payload (as Stripe sent it)")
    def payload_json(self, obj: BillingEvent) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(obj.payload, indent=2))


@admin.register(StripeReconciliation)
class StripeReconciliationAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started_at", "since", "until", "listed", "fed", "finished_at")
    ordering = ("-started_at",)
    actions = None
