"""Building blocks shared by the admins of big tables (tenants, devices, audit log, billing, archival, metrics).

- `BigTableAdminMixin`: the estimated-count paginator, no full-result count, no facet counts.
- `indexed_values_filter`: a list filter offering a column's distinct values, found by a loose index scan on PostgreSQL
  (one index probe per distinct value) instead of `SELECT DISTINCT` over the whole table.
- `TenantIdSearchMixin`: search that only runs indexed lookups: a UUID matches the row id or the tenant id exactly.
- `ViewOnlyAdminMixin`: rows written by services, tasks or Stripe are shown, never added, edited or deleted by hand.
- `run_for_each`: the one way an admin action calls a service per selected row, with a cap on the selection.
"""

import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db import connections
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from core.admin_paginator import EstimatedCountPaginator
from core.errors import PlatformError


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        return None


class BigTableAdminMixin:
    """Changelist settings that keep a list page cheap whatever the table's size."""

    paginator: ClassVar[type] = EstimatedCountPaginator
    show_full_result_count: ClassVar[bool] = False
    show_facets: ClassVar[admin.ShowFacets] = admin.ShowFacets.NEVER
    list_per_page: ClassVar[int] = 50
    list_max_show_all: ClassVar[int] = 200


_LOOSE_SCAN_SQL = """
WITH RECURSIVE t(v) AS (
    (SELECT {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 1)
    UNION ALL
    SELECT (SELECT {col} FROM {table} WHERE {col} > t.v ORDER BY {col} LIMIT 1) FROM t WHERE t.v IS NOT NULL
)
SELECT v FROM t WHERE v IS NOT NULL LIMIT %s
"""

MAX_FILTER_VALUES = 200


def distinct_values(model: Any, field_name: str, limit: int = MAX_FILTER_VALUES) -> list[str]:
    """Distinct non-null values of an indexed column, cheaply: a loose index scan on PostgreSQL."""
    field = model._meta.get_field(field_name)
    connection = connections[model.objects.db]
    if connection.vendor != "postgresql":
        qs = model.objects.exclude(**{f"{field_name}__isnull": True}).order_by(field_name)
        return list(qs.values_list(field_name, flat=True).distinct()[:limit])
    sql = _LOOSE_SCAN_SQL.format(
        col=connection.ops.quote_name(field.column), table=connection.ops.quote_name(model._meta.db_table)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def indexed_values_filter(field_name: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on `field_name` (which must be indexed) listing its distinct values."""

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [(value, value) for value in distinct_values(model_admin.model, field_name)]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            return queryset.filter(**{field_name: value}) if value else queryset

    IndexedValuesFilter.title = title
    IndexedValuesFilter.__name__ = f"IndexedValuesFilter_{field_name}"
    return IndexedValuesFilter


class TenantIdSearchMixin:
    """Search by id: a UUID matches the row's own id or its tenant id (both indexed); anything else matches nothing."""

    # Shows the search box; the lookup itself is get_search_results below.
    search_fields: ClassVar[list[str] | tuple[str, ...]] = ("=tenant__id",)
    tenant_id_field: ClassVar[str] = "tenant_id"
    match_own_id: ClassVar[bool] = True

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        value = parse_uuid(search_term)
        if value is None:
            return queryset.none(), False
        condition = Q(**{self.tenant_id_field: value})
        if self.match_own_id:
            condition |= Q(pk=value)
        return queryset.filter(condition), False


class ViewOnlyAdminMixin:
    """No add, no edit, no delete through the admin; users with the view (or change) permission can look."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActionsOnlyAdminMixin:
    """Rows are changed only through admin actions (which call services): the change form is view-only.

    `has_change_permission` is True on the changelist (obj None) for users with the change permission, so that
    actions declared with `permissions=["change"]` are offered, and False for a single object, so the change form
    renders read-only and a POST to it is refused.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)  # type: ignore[misc]  # ModelAdmin follows in the MRO

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


MAX_ACTION_ROWS = 500


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    call: Callable[[Any], object],
    done: str,
) -> None:
    """Call `call(pk)` for each selected row (each its own transaction); report successes and failures."""
    ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_ACTION_ROWS + 1])
    if len(ids) > MAX_ACTION_ROWS:
        modeladmin.message_user(
            request,
            f"Select at most {MAX_ACTION_ROWS} rows for this action (narrow the list with a filter or search).",
            messages.ERROR,
        )
        return
    failures: list[str] = []
    for pk in ids:
        try:
            call(pk)
        except PlatformError as exc:
            failures.append(f"{pk}: {exc.message}")
    succeeded = len(ids) - len(failures)
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)
    if failures:
        modeladmin.message_user(request, "Not changed: " + "; ".join(failures[:20]), messages.ERROR)
