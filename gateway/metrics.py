"""The gateway's Prometheus metrics, in a registry of its own."""

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

registry = CollectorRegistry(auto_describe=True)

requests_total = Counter(
    "percolate_gateway_requests", "Requests by tier and status", ["tier", "status"], registry=registry
)
request_seconds = Histogram(
    "percolate_gateway_request_duration_seconds",
    "Time to response headers",
    ["tier"],
    registry=registry,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
upstream_errors = Counter("percolate_gateway_upstream_errors", "Upstream failures by kind", ["kind"], registry=registry)
route_choices = Counter(
    "percolate_gateway_routes", "Routing decisions (rank 0 = first choice)", ["tier", "choice"], registry=registry
)
cache_lookups = Counter(
    "percolate_gateway_cache_lookups", "Route and key cache hits and misses", ["cache", "result"], registry=registry
)
rate_limited = Counter(
    "percolate_gateway_rate_limited", "Requests refused by rate limits", ["tier", "reason"], registry=registry
)
open_streams = Gauge("percolate_gateway_open_streams", "Proxied requests in flight", registry=registry)
cold_starts = Counter(
    "percolate_gateway_cold_starts",
    "Requests answered while the tenant was not hot, by kind",
    ["kind"],
    registry=registry,
)
cold_start_ttfb = Histogram(
    "percolate_gateway_cold_start_ttfb_seconds",
    "Time to first byte on the cold path",
    ["kind"],
    registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
warm_seconds = Histogram(
    "percolate_gateway_warm_duration_seconds",
    "Time for a tier pod to warm a tenant on the cold path, by result",
    ["result"],
    registry=registry,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
warm_queue_depth = Gauge(
    "percolate_gateway_warm_queue_depth", "Requests waiting for a tenant's pod to warm (all tenants)", registry=registry
)
warm_queue_overflow = Counter(
    "percolate_gateway_warm_queue_overflow",
    "Requests refused because a tenant's warming queue was full",
    registry=registry,
)
blob_cache_lookups = Counter(
    "percolate_gateway_blob_cache_lookups",
    "Context blob lookups: hit, miss (fetched), absent, invalid (did not open), error (store unreachable)",
    ["result"],
    registry=registry,
)
blob_cache_bytes = Gauge("percolate_gateway_blob_cache_bytes", "Opened context blobs held in memory", registry=registry)
deliveries = Counter(
    "percolate_gateway_cold_deliveries",
    "Messages answered from a blob and then delivered to the tenant's store, by result",
    ["result"],
    registry=registry,
)
restores_requested = Counter(
    "percolate_gateway_restores_requested", "Restores the gateway asked for, by result", ["result"], registry=registry
)


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, bound once per label set: `labels()` validates and takes a lock on every call,
    which shows on the request path. Label sets are few (tiers x statuses), so this never grows large."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def cache_lookup_recorder(cache: str) -> Callable[[bool], None]:
    """Counts a cache's hits and misses; the labelled children are bound once, not looked up per request."""
    hit, miss = cache_lookups.labels(cache, "hit"), cache_lookups.labels(cache, "miss")
    return lambda was_hit: (hit if was_hit else miss).inc()
