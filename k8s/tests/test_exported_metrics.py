"""exported-metrics.txt is not a wish list: every platform metric it names is registered by the code, with that type.

Dashboards and alerts may query only names in that file (test_monitoring.py); this closes the loop to the code.
"""

import pytest
from prometheus_client import CollectorRegistry

from gateway import metrics as gateway_metrics
from k8s.checks import exported_metrics
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
