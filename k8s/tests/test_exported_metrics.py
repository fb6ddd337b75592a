"""exported-metrics.txt is not a wish list: every platform metric it names is registered by the code, with that type.

Dashboards and alerts may query only names in that file (test_monitoring.py); this closes the loop to the code.
"""

import pytest
from prometheus_client import CollectorRegistry

from gateway import metrics as gateway_metrics
from k8s.metrics import exported_metrics
from percolate_platform.worker_metrics import build_registry
from tiernode.metrics import NodeMetrics

OURS = ("percolate_", "celery_")


def _families(registry: CollectorRegistry) -> dict[str, str]:
    out = {}
    for family in registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        out[name] = family.type
    return out


@pytest.mark.django_db
def test_every_listed_platform_metric_is_exported_by_the_code() -> None:
    exported: dict[str, str] = {}
    for registry in (gateway_metrics.registry, NodeMetrics(tier="A", pod_id="p").registry, build_registry()):
        exported.update(_families(registry))
    listed = {name: kind for name, kind in exported_metrics().items() if name.startswith(OURS)}
    missing = {name: kind for name, kind in listed.items() if exported.get(name) != kind}
    assert not missing, f"listed in exported-metrics.txt but not exported with that type: {missing}"


# Labels Prometheus adds to every scraped series, plus `tier` (PodMonitor tier-nodes relabels the pod's
# percolate.io/tier label) and `le` (histogram buckets).
SCRAPE_LABELS = {"namespace", "pod", "job", "instance", "service", "endpoint", "container", "tier", "le"}


def _labels_by_metric(registries: list[CollectorRegistry]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for registry in registries:
        for family in registry.collect():
            names = {f"{family.name}_total", family.name} if family.type == "counter" else {family.name}
            labels = {label for sample in family.samples for label in sample.labels}
            labels |= set(getattr(family, "_labelnames", ()))  # a custom collector's family, even with no sample
            for name in names:
                out.setdefault(name, set()).update(labels)
        for collector in list(registry._collector_to_names):  # labelled metrics with no sample yet
            base, labelnames = getattr(collector, "_name", None), getattr(collector, "_labelnames", ())
            if base:
                for full in (base, f"{base}_total", f"{base}_bucket"):
                    out.setdefault(full, set()).update(labelnames)
    return out


@pytest.mark.django_db
def test_dashboards_and_alerts_use_only_labels_the_metrics_carry() -> None:
    """A panel grouping by a label the metric does not have shows one unlabelled line, or nothing."""
    import re

    from k8s import manifests, metrics

    labels = _labels_by_metric([gateway_metrics.registry, NodeMetrics(tier="A", pod_id="p").registry, build_registry()])
    objs = manifests.rendered_overlay("prod")
    queries = [(f"{manifests.object_id(cm)} {key} {where}", expr) for cm, key, board in metrics.dashboards(objs)
               for where, expr in metrics.dashboard_queries(board)]  # fmt: skip
    queries += [
        (f"{manifests.object_id(o)} rule {r.get('alert') or r.get('record')}", r["expr"])
        for o in objs if o.get("kind") == "PrometheusRule" for g in o["spec"]["groups"] for r in g["rules"]
    ]  # fmt: skip
    problems = []
    for where, expr in queries:
        ours = {m for m in metrics.promql_metric_names(expr) if m in labels}
        if not ours:
            continue
        used = {
            lbl.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for lbl in group.split(",")
        }
        used |= set(re.findall(r"[{,]\s*([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", expr))
        carried = set().union(*(labels[m] for m in ours)) | SCRAPE_LABELS
        for label in sorted(used - carried - {""}):
            problems.append(f"{where}: uses label {label!r}, which {sorted(ours)} do not carry")
    assert not problems, "\n".join(problems)
