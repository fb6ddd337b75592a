"""The loop-owned request metrics expose exactly what prometheus_client's own Counter and Histogram would."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.metrics import LoopCounter, LoopHistogram, cache_lookup_recorder, cache_lookups, registry

BUCKETS = (0.001, 0.01, 0.1, 1)
OBSERVED = [(0.0005, "A"), (0.001, "A"), (0.05, "A"), (0.05, "B"), (3.0, "A"), (1.0, "B")]


def _samples(reg: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in reg.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_loop_histogram_reads_like_a_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop_histogram = LoopHistogram("h_seconds", "doc", ["tier"], buckets=BUCKETS, registry=ours)
    histogram = Histogram("h_seconds", "doc", ["tier"], buckets=BUCKETS, registry=theirs)
    for value, tier in OBSERVED:
        loop_histogram.observe(value, tier)
        histogram.labels(tier).observe(value)
    assert _samples(ours) == _samples(theirs)


def test_a_loop_counter_reads_like_a_prometheus_counter() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop_counter = LoopCounter("c", "doc", ["tier", "status"], registry=ours)
    counter = Counter("c", "doc", ["tier", "status"], registry=theirs)
    for tier, status in [("A", "200"), ("A", "200"), ("B", "429")]:
        loop_counter.inc(tier, status)
        counter.labels(tier, status).inc()
    assert _samples(ours) == _samples(theirs)


def test_cache_lookups_are_counted_by_hit_and_miss() -> None:
    record = cache_lookup_recorder("test-cache")
    before = dict(cache_lookups.counts)
    record(True)
    record(True)
    record(False)
    assert cache_lookups.counts[("test-cache", "hit")] - before.get(("test-cache", "hit"), 0) == 2
    assert registry.get_sample_value("percolate_gateway_cache_lookups_total", {"cache": "test-cache", "result": "miss"})
