"""Metrics a Celery worker serves on CELERY_METRICS_PORT for Prometheus.

Counts are read from the database and Redis at scrape time rather than counted in memory: the prefork pool runs
tasks in child processes whose in-memory counters the scraped parent would never see, and the database already
holds every job and event (rows are never deleted, so the counts only grow, as counters must).
"""

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db import close_old_connections, connection
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from archival import metrics as archival_metrics
from archival.selectors import job_counts
from backups import metrics as backup_metrics
from billing.metrics import billing_metrics
from billing.selectors import event_counts
from moves import metrics as move_metrics

log = logging.getLogger(__name__)
QUEUES = ("celery",)


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        if not connection.in_atomic_block:  # the scrape thread's connection may have gone stale since last time
            close_old_connections()
        jobs = CounterMetricFamily(
            "percolate_archival_jobs", "Archival jobs by type and status", labels=["job_type", "status"]
        )
        for job_type, status, n in job_counts():
            jobs.add_metric([job_type, status], n)
        yield jobs
        events = CounterMetricFamily(
            "percolate_billing_events", "Stripe events by processing status", labels=["status"]
        )
        for status, n in event_counts():
            events.add_metric([status], n)
        yield events
        yield from billing_metrics()
        yield from backup_metrics.collect()
        yield from move_metrics.collect()
        yield from archival_metrics.collect()
        yield self._queue_lengths()

    def _queue_lengths(self) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily("celery_queue_length", "Messages waiting in each Celery queue", labels=["queue_name"])
        if settings.REDIS_URL:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            try:
                for queue in QUEUES:
                    gauge.add_metric([queue], client.llen(queue))
            except redis.RedisError:
                log.warning("worker metrics: Redis did not answer the queue length")
            finally:
                client.close()
        return gauge


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector())
    return registry


def serve(port: int) -> None:
    start_http_server(port, addr="0.0.0.0", registry=build_registry())  # noqa: S104 (scraped inside the cluster)
