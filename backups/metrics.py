"""Backup metrics, read from the database at scrape time by the worker's metrics endpoint.

The CronJob's pod is gone long before Prometheus could scrape it, and the records are in the database anyway; the
alerts (k8s/monitoring/rules) fire when the last success is too old or when there never was one (0).
"""

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from backups.selectors import backup_health


def collect() -> Iterator[Metric]:
    health = backup_health()
    yield GaugeMetricFamily(
        "percolate_platform_backup_last_success_timestamp_seconds",
        "Unix time the last platform database backup completed (0: never)",
        value=health.last_success_at,
    )
    yield GaugeMetricFamily(
        "percolate_platform_backup_last_size_bytes",
        "Sealed size of the last completed backup",
        value=health.last_size_bytes,
    )
    yield GaugeMetricFamily(
        "percolate_platform_backup_last_duration_seconds",
        "How long the last completed backup took (dump, seal, upload)",
        value=health.last_duration_seconds,
    )
    yield GaugeMetricFamily(
        "percolate_platform_restore_drill_last_success_timestamp_seconds",
        "Unix time the last restore drill passed all its checks (0: never)",
        value=health.last_drill_success_at,
    )
    runs = CounterMetricFamily("percolate_platform_backup_runs", "Platform backup runs by status", labels=["status"])
    for status, n in health.runs.items():
        runs.add_metric([status], n)
    yield runs
    drills = CounterMetricFamily("percolate_platform_restore_drills", "Restore drills by status", labels=["status"])
    for status, n in health.drills.items():
        drills.add_metric([status], n)
    yield drills
