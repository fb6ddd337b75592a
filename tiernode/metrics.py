"""Prometheus metrics of one node, in its own registry (several nodes can live in one test process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

LOAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class NodeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, tier: str, pod_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.hot = Gauge("percolate_hot_tenants_count", "Tenants loaded (RocksDB open) on this pod", registry=r)
        self.warm = Gauge("percolate_warm_tenants_count", "Tenants kept warm (closed, still assigned)", registry=r)
        self.max_hot = Gauge("percolate_max_hot_tenants", "The pod's hot-set bound (MAX_HOT_TENANTS)", registry=r)
        self.load_seconds = Histogram(
            "percolate_tenant_load_seconds",
            "Time to load a tenant, by the state it was loaded from",
            ["source"],
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.evictions = Counter(
            "percolate_tenant_evictions_total", "Tenants taken out of the hot set, by reason", ["reason"], registry=r
        )
        self.transitions = Counter(
            "percolate_tenant_state_transitions_total",
            "Tenant state transitions on this pod",
            ["from", "to"],
            registry=r,
        )
        self.state_reports = Counter(
            "percolate_tenant_state_reports_total",
            "State reports to the platform, by outcome",
            ["result"],
            registry=r,
        )
        self.context_blobs = Counter(
            "percolate_context_blob_writes_total", "Context blob writes, by outcome", ["result"], registry=r
        )
        self.deletion_cost_patches = Counter(
            "percolate_pod_deletion_cost_patches_total",
            "Patches of this pod's pod-deletion-cost annotation (its hot-tenant count), by outcome",
            ["result"],
            registry=r,
        )
        self.info = Gauge("percolate_tier_node_info", "Static facts about this node", ["tier", "pod_id"], registry=r)
        self.info.labels(tier=tier, pod_id=pod_id).set(1)
        self.tenants = TenantCollector(lambda: ())
        r.register(self.tenants)

    def bind_counts(self, hot: Callable[[], int], warm: Callable[[], int], max_hot: int) -> None:
        """Hot/warm gauges read the manager at scrape time, so /metrics never disagrees with it."""
        self.hot.set_function(lambda: float(hot()))
        self.warm.set_function(lambda: float(warm()))
        self.max_hot.set(max_hot)

    def bind_tenants(self, hot_tenants: Callable[[], Iterable[Any]]) -> None:
        """Per-tenant series for the tenants hot on this pod, read at scrape time (the platform's metrics scrape)."""
        self.tenants.hot_tenants = hot_tenants

    def render(self) -> bytes:
        return generate_latest(self.registry)


class TenantCollector(Collector):
    """One series per hot tenant (so at most MAX_HOT_TENANTS per metric): requests since its load, RocksDB memory,
    the time its last load took, its message count. A tenant's series go when it leaves the hot set."""

    def __init__(self, hot_tenants: Callable[[], Iterable[Any]]) -> None:
        self.hot_tenants = hot_tenants

    def describe(self) -> Iterator[Any]:
        return iter(self._families())

    def _families(self) -> tuple[Any, ...]:
        return (
            CounterMetricFamily(
                "percolate_tenant_requests", "Chat requests served since the tenant was loaded", labels=["tenant_id"]
            ),
            GaugeMetricFamily("percolate_tenant_memory_bytes", "RocksDB memory of a hot tenant", labels=["tenant_id"]),
            GaugeMetricFamily(
                "percolate_tenant_last_load_seconds", "How long the tenant's last load took", labels=["tenant_id"]
            ),
            GaugeMetricFamily("percolate_tenant_messages", "Messages in the tenant's store", labels=["tenant_id"]),
        )

    def collect(self) -> Iterator[Any]:
        requests, memory, load, messages = self._families()
        for t in list(self.hot_tenants()):
            store, label = t.store, [str(t.tenant_id)]
            if store is None or store.closed:
                continue
            requests.add_metric(label, t.requests)
            memory.add_metric(label, store.memory_bytes)
            load.add_metric(label, t.load_seconds)
            messages.add_metric(label, store.message_count)
        yield from (requests, memory, load, messages)
