"""Per-tenant metrics: scrape every tier pod's /metrics into `tenant_metrics`, and prune what is past retention.

A pod exports one series per hot tenant (tiernode.metrics.TenantCollector); each scrape stores one row per tenant and
metric, recorded at the scrape's time. Each pod's rows are written in their own transaction, so a pod that does not
answer (or a crash halfway) loses only that pod's sample of that minute, and the next scrape carries on.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from gateway.pods.discovery import Discovery
from tenants.models import Tenant, TenantMetric

log = logging.getLogger(__name__)

PREFIX = "percolate_tenant_"
# What a pod exports per tenant → the metric_name stored (the chart's series).
STORED = {
    "percolate_tenant_requests_total": "requests",
    "percolate_tenant_memory_bytes": "memory_bytes",
    "percolate_tenant_last_load_seconds": "load_seconds",
    "percolate_tenant_messages": "messages",
}
PRUNE_BATCH = 10_000


@dataclass
class ScrapeResult:
    pods: int = 0
    rows: int = 0
    failed: list[str] = field(default_factory=list)


def pod_metrics_addresses() -> list[str]:
    """Every tier pod's internal address (static list locally, the headless Services' DNS in Kubernetes)."""
    discovery = Discovery(
        settings.GATEWAY_TIER_PODS,
        dns={tier: name for tier, name in settings.GATEWAY_TIER_DNS.items() if name},
        port=settings.GATEWAY_POD_PORT,
        internal_port=settings.GATEWAY_POD_INTERNAL_PORT,
    )
    if any(settings.GATEWAY_TIER_DNS.values()):
        asyncio.run(discovery.resolve_once())
    return sorted({discovery.internal_address(pod) for ps in discovery.tiers.values() for pod in ps.pods})


def parse_tenant_samples(text: str) -> list[tuple[uuid.UUID, str, float]]:
    """(tenant, stored metric name, value) for each per-tenant sample of a /metrics page."""
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, tenant = STORED.get(sample.name), sample.labels.get("tenant_id")
            if name is None or tenant is None:
                continue
            try:
                samples.append((uuid.UUID(tenant), name, float(sample.value)))
            except ValueError:
                continue
    return samples


def fetch(address: str, timeout: float) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as response:
        return str(response.read().decode())


def store_samples(samples: list[tuple[uuid.UUID, str, float]], *, at: datetime) -> int:
    """One row per sample of a tenant the platform knows (a pod may still hold a tenant deleted since)."""
    known = set(Tenant.objects.filter(pk__in={t for t, _, _ in samples}).values_list("pk", flat=True))
    rows = [
        TenantMetric(tenant_id=t, metric_name=name, metric_value=Decimal(str(round(value, 6))), recorded_at=at)
        for t, name, value in samples
        if t in known
    ]
    with transaction.atomic():
        TenantMetric.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def scrape_pods(*, addresses: list[str] | None = None, timeout: float = 3.0) -> ScrapeResult:
    result = ScrapeResult()
    at = timezone.now()
    for address in pod_metrics_addresses() if addresses is None else addresses:
        try:
            text = fetch(address, timeout)
        except OSError as exc:
            log.warning("metrics scrape: %s did not answer: %s", address, exc)
            result.failed.append(address)
            continue
        result.rows += store_samples(parse_tenant_samples(text), at=at)
        result.pods += 1
    return result


def prune_tenant_metrics(*, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete rows recorded before now - older_than, oldest first in batches (idx_tenant_metrics_recorded), each
    batch its own short transaction so pruning never holds locks for long; safe to stop and re-run anywhere."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            TenantMetric.objects.filter(recorded_at__lt=cutoff)
            .order_by("recorded_at", "id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += TenantMetric.objects.filter(pk__in=ids).delete()[0]
