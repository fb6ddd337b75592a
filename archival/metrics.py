"""Archive drill metrics, read from ``archival_drills`` at scrape time by the worker's metrics endpoint; the alerts
(k8s/monitoring/rules) fire when the last drill failed or when none finished for two periods."""

from collections.abc import Iterator

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from archival.selectors import drill_health


def collect() -> Iterator[Metric]:
    health = drill_health()
    yield GaugeMetricFamily(
        "percolate_archive_drill_last_run_timestamp_seconds",
        "Unix time the last archive drill finished, passed or not (0: never)",
        value=health.last_run_at,
    )
    yield GaugeMetricFamily(
        "percolate_archive_drill_last_success_timestamp_seconds",
        "Unix time the last archive drill passed every archive it checked (0: never)",
        value=health.last_success_at,
    )
    yield GaugeMetricFamily(
        "percolate_archive_drill_last_failures",
        "Archives that failed their check in the last finished archive drill",
        value=health.last_failures,
    )
    yield GaugeMetricFamily(
        "percolate_archive_drill_period_seconds",
        "How often beat runs the archive drill (ARCHIVE_DRILL_EVERY_DAYS)",
        value=settings.ARCHIVE_DRILL_EVERY_DAYS * 86400,
    )
    runs = CounterMetricFamily("percolate_archive_drills", "Archive drills by status", labels=["status"])
    for status, n in health.runs.items():
        runs.add_metric([status], n)
    yield runs
