"""The gateway's Prometheus metrics, in a registry of its own.

The four that move on every request (requests, latency, routing choices, cache lookups) are plain counters owned by
the event loop and turned into samples at scrape time (LoopCounter, LoopHistogram): a prometheus_client child takes a
lock and re-checks its labels on every call, which cost as much as the rest of the routing decision. The gateway is
one event-loop thread per process, and the scrape runs on that loop too, so nothing needs the lock.
"""

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

registry = CollectorRegistry(auto_describe=True)


class LoopCounter(Collector):
    """A labelled counter: `inc(*labels)` is a dict update; the registry reads it at scrape time."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *, registry: CollectorRegistry):
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self.counts: dict[tuple[str, ...], int] = {}
        registry.register(self)

    def inc(self, *labels: str) -> None:
        self.counts[labels] = self.counts.get(labels, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for labels, count in list(self.counts.items()):
            family.add_metric(list(labels), count)
        yield family


class LoopHistogram(Collector):
    """A labelled histogram: `observe(value, *labels)` bumps one bucket; cumulated at scrape time."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ):
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self._bounds = sorted(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}  # per label set: one count per bucket, +Inf, then sum
        registry.register(self)

    def observe(self, value: float, *labels: str) -> None:
        counts = self.series.get(labels)
        if counts is None:
            counts = self.series[labels] = [0.0] * (len(self._bounds) + 2)
        counts[bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        for labels, counts in list(self.series.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip([*self._bounds, float("inf")], counts, strict=False):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(list(labels), buckets, sum_value=counts[-1])
        yield family


requests_total = LoopCounter(
    "percolate_gateway_requests", "Requests by tier and status", ["tier", "status"], registry=registry
)
request_seconds = LoopHistogram(
    "percolate_gateway_request_duration_seconds",
    "Time to response headers",
    ["tier"],
    registry=registry,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
upstream_errors = Counter("percolate_gateway_upstream_errors", "Upstream failures by kind", ["kind"], registry=registry)
route_choices = LoopCounter(
    "percolate_gateway_routes", "Routing decisions (rank 0 = first choice)", ["tier", "choice"], registry=registry
)
cache_lookups = LoopCounter(
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


def cache_lookup_recorder(cache: str) -> Callable[[bool], None]:
    """Counts a cache's hits and misses."""
    return lambda was_hit: cache_lookups.inc(cache, "hit" if was_hit else "miss")


edge_timeouts = Counter(
    "percolate_gateway_edge_timeouts",
    "Client connections cut for not sending a request in time (gateway.deadlines), by the part they were sending",
    ["phase"],
    registry=registry,
)
shed = LoopCounter(
    "percolate_gateway_shed",
    "Requests refused at once (503) at the bound of requests in flight (gateway.admission), by the server or the app",
    ["by"],
    registry=registry,
)
in_flight = Gauge(
    "percolate_gateway_in_flight",
    "Admitted requests whose response has not started (gateway.admission)",
    registry=registry,
)
loop_lag = LoopHistogram(
    "percolate_gateway_loop_lag_seconds",
    "How late the event loop ran the admission probe's timer (gateway.admission)",
    [],
    registry=registry,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
