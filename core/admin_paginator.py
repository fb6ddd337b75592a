"""A paginator for admin changelists over big tables: no `SELECT COUNT(*)` over millions of rows.

On PostgreSQL the count is an estimate:

- unfiltered queryset: the table's `pg_class.reltuples`, scaled to the relation's current size the way the planner does
  it (so a table that grew since its last ANALYZE is not under-counted);
- filtered queryset (a filter or a search): the planner's row estimate from `EXPLAIN (FORMAT JSON)`.

When the estimate is small (below `exact_threshold`) the exact `count()` is cheap and used instead, so small lists and
narrow searches show true numbers. On other databases (SQLite in the embedded default) the paginator counts.

Used by every big changelist together with `show_full_result_count = False`.
"""

import json
import logging

from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

EXACT_COUNT_THRESHOLD = 10_000

_RELTUPLES_SQL = """
SELECT CASE
    WHEN c.reltuples < 0 THEN NULL
    WHEN c.relpages = 0 THEN c.reltuples
    ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::bigint)
END
FROM pg_class c
WHERE c.oid = to_regclass(%s)
"""


def is_unfiltered(queryset: QuerySet) -> bool:
    """True when the queryset selects every row of its table (joins for select_related do not filter)."""
    query = queryset.query
    return (
        not query.has_filters()
        and not query.distinct
        and not query.combinator
        and query.low_mark == 0
        and query.high_mark is None
        and not query.extra
        and query.group_by is None
    )


def table_estimate(queryset: QuerySet) -> int | None:
    """The planner's idea of the table's row count (PostgreSQL), or None if the table was never analysed."""
    table = connections[queryset.db].ops.quote_name(queryset.model._meta.db_table)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(_RELTUPLES_SQL, [table])
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0])


def plan_estimate(queryset: QuerySet) -> int | None:
    """The planner's estimated row count for the queryset (PostgreSQL `EXPLAIN (FORMAT JSON)`)."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    rows = plan[0]["Plan"].get("Plan Rows")
    return int(rows) if rows is not None else None


def estimated_count(queryset: QuerySet, *, exact_threshold: int = EXACT_COUNT_THRESHOLD) -> int:
    """The row count of `queryset`: estimated on PostgreSQL when large, exact when small or on other databases."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.count()
    try:
        # A savepoint, so that a failed EXPLAIN cannot poison the caller's transaction.
        with transaction.atomic(using=queryset.db):
            estimate = table_estimate(queryset) if is_unfiltered(queryset) else plan_estimate(queryset)
    except (DatabaseError, KeyError, IndexError, TypeError, ValueError):
        logger.warning("row estimate failed for %s; counting", queryset.model._meta.label, exc_info=True)
        estimate = None
    if estimate is None or estimate < exact_threshold:
        return queryset.count()
    return estimate


class EstimatedCountPaginator(Paginator):
    """Django's paginator with `count` estimated on PostgreSQL for large results (see the module docstring)."""

    exact_threshold = EXACT_COUNT_THRESHOLD

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return estimated_count(self.object_list, exact_threshold=self.exact_threshold)
        return len(self.object_list)

    @cached_property
    def is_estimate(self) -> bool:
        """Whether `count` may be an estimate (the admin shows it with a "~")."""
        return (
            isinstance(self.object_list, QuerySet)
            and connections[self.object_list.db].vendor == "postgresql"
            and self.count >= self.exact_threshold
        )
