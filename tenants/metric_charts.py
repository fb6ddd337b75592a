"""The tenant page's metrics chart: one small SVG line per metric over the last day, drawn on the server.

Reads the tenant's rows through idx_tenant_metrics_tenant_time (a day at one scrape a minute is 1,440 rows per
metric) and thins each series to at most MAX_POINTS points, keeping the last.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tenants.models import TenantMetric

WIDTH, HEIGHT, MAX_POINTS = 360, 48, 180
LABELS = {
    "requests": "requests since load",
    "memory_bytes": "memory (bytes)",
    "load_seconds": "last load (s)",
    "messages": "messages",
}


def tenant_metric_series(*, tenant_id: UUID, since: datetime) -> dict[str, list[tuple[datetime, float]]]:
    rows = (
        TenantMetric.objects.filter(tenant_id=tenant_id, recorded_at__gte=since)
        .order_by("-recorded_at")
        .values_list("metric_name", "recorded_at", "metric_value")[: MAX_POINTS * 40]
    )
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for name, at, value in rows:
        series[name].append((at, float(value)))
    return {name: _thin(points[::-1]) for name, points in sorted(series.items())}


def _thin(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def _polyline(points: list[tuple[datetime, float]], start: datetime, span: float) -> str:
    top = max(value for _, value in points) or 1.0
    return " ".join(
        f"{WIDTH * (at - start).total_seconds() / span:.1f},{HEIGHT - 2 - (HEIGHT - 4) * value / top:.1f}"
        for at, value in points
    )


def metrics_chart(*, tenant_id: UUID, hours: int = 24) -> SafeString:
    now = timezone.now()
    start = now - timedelta(hours=hours)
    series = tenant_metric_series(tenant_id=tenant_id, since=start)
    if not series:
        return format_html("<span>No samples in the last {} hours (the tenant was not hot on any pod).</span>", hours)
    span = (now - start).total_seconds()
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td><svg class="tenant-metric" data-metric="{}" width="{}" height="{}" role="img">'
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg></td><td>{}</td></tr>',
        (
            (LABELS.get(name, name), name, WIDTH, HEIGHT, _polyline(points, start, span), f"{points[-1][1]:g}")
            for name, points in series.items()
        ),
    )
    return format_html("<table><tr><th>metric</th><th>last {} h</th><th>latest</th></tr>{}</table>", hours, rows)
