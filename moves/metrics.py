"""Tier-move metrics, read from the database at scrape time by the worker's metrics endpoint (as archival's and
backups' are: the prefork children's in-memory counters would never reach the scraped parent; move rows are never
deleted, so the counts only grow, as counters must)."""

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from moves.models import Move
from moves.selectors import move_counts

BUCKETS_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def collect() -> Iterator[Metric]:
    moves = CounterMetricFamily(
        "percolate_tier_moves",
        "Finished tier moves by source tier, target tier and result",
        labels=["from", "to", "result"],
    )
    for from_tier, to_tier, result, n in move_counts():
        moves.add_metric([from_tier, to_tier, result], n)
    yield moves
    yield _durations()


def _durations() -> HistogramMetricFamily:
    """One aggregate over finished moves (no-ops excluded): a count per bucket and the sum."""
    finished = Move.objects.filter(finished_at__isnull=False, duration_ms__isnull=False).exclude(step="noop")
    buckets = {f"le_{i}": Count("id", filter=Q(duration_ms__lte=s * 1000)) for i, s in enumerate(BUCKETS_SECONDS)}
    row = finished.aggregate(total=Count("id"), sum_ms=Sum("duration_ms"), **buckets)
    histogram = HistogramMetricFamily(
        "percolate_tier_move_duration_seconds", "How long finished tier moves took, request to end", labels=["result"]
    )
    histogram.add_metric(
        ["all"],
        buckets=[*((str(s), row[f"le_{i}"]) for i, s in enumerate(BUCKETS_SECONDS)), ("+Inf", row["total"])],
        sum_value=(row["sum_ms"] or 0) / 1000,
    )
    return histogram
