"""Per-tenant metrics: a real tier node process scraped into tenant_metrics by the beat task; a pod down or a crash
halfway loses only that pod's sample; pruning keeps the retention, in batches, and can be stopped anywhere."""

import signal
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from overview import metrics_scrape, tasks
from tenants.models import TenantMetric
from tiernode.tests.conftest import node_env
from tiernode.tests.test_process import Node, _free_port


@pytest.fixture
def node(tmp_path: Path):
    node = Node(node_env(tmp_path, PERCOLATE_TENANT_TIER="B"), _free_port())
    yield node
    node.stop(signal.SIGTERM)


def test_beat_task_stores_each_hot_tenants_series(db, node, make_tenant, settings) -> None:
    ada, bob = make_tenant(), make_tenant()
    for _ in range(3):
        assert node.chat(ada.id, "hello", generation=1)[0] == 200
    assert node.chat(bob.id, "hi", generation=1)[0] == 200
    settings.GATEWAY_TIER_PODS = {"B": [f"127.0.0.1:{node.public_port}/{node.port}"], "A": [], "C": []}
    settings.GATEWAY_TIER_DNS = {"A": "", "B": "", "C": ""}

    assert tasks.scrape_tenant_metrics.apply().get() == {"pods": 1, "rows": 8, "failed": 0, "pruned": 0}
    values = dict(TenantMetric.objects.filter(tenant=ada).values_list("metric_name", "metric_value"))
    assert values["requests"] == 3 and values["messages"] == 6
    assert values["memory_bytes"] > 0 and values["load_seconds"] > 0
    assert TenantMetric.objects.filter(tenant=bob, metric_name="requests").get().metric_value == 1


def test_a_pod_down_or_a_crash_loses_only_that_pods_sample(db, node, make_tenant, monkeypatch) -> None:
    tenant = make_tenant()
    assert node.chat(tenant.id, "hello", generation=1)[0] == 200
    here, down = f"127.0.0.1:{node.port}", f"127.0.0.1:{_free_port()}"
    result = metrics_scrape.scrape_pods(addresses=[down, here], timeout=1)
    assert result.failed == [down] and result.pods == 1 and result.rows == 4

    real_store = metrics_scrape.store_samples
    calls = {"n": 0}

    def crash_on_second(samples, *, at):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("worker killed mid-scrape")
        return real_store(samples, at=at)

    monkeypatch.setattr(metrics_scrape, "store_samples", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        metrics_scrape.scrape_pods(addresses=[here, here])
    assert TenantMetric.objects.filter(tenant=tenant).count() == 8  # the first pod's rows, whole
    monkeypatch.setattr(metrics_scrape, "store_samples", real_store)
    assert metrics_scrape.scrape_pods(addresses=[here]).rows == 4  # the next scrape carries on


def test_prune_keeps_the_retention_and_resumes_after_a_crash(db, make_tenant, monkeypatch) -> None:
    tenant = make_tenant()
    now = timezone.now()
    for hours in range(10):
        TenantMetric.objects.create(
            tenant=tenant, metric_name="requests", metric_value=Decimal(hours), recorded_at=now - timedelta(hours=hours)
        )
    real_delete = metrics_scrape.TenantMetric.objects.filter
    batches = {"n": 0}

    def crash_after_first_batch(*args, **kwargs):
        if "pk__in" in kwargs:
            batches["n"] += 1
            if batches["n"] == 2:
                raise KeyboardInterrupt("worker killed mid-prune")
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(metrics_scrape.TenantMetric.objects, "filter", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        metrics_scrape.prune_tenant_metrics(older_than=timedelta(hours=4, minutes=30), batch=2)
    monkeypatch.undo()
    assert TenantMetric.objects.filter(tenant=tenant).count() == 8  # one batch of the oldest two went
    assert metrics_scrape.prune_tenant_metrics(older_than=timedelta(hours=4, minutes=30), batch=2) == 3
    assert sorted(TenantMetric.objects.values_list("metric_value", flat=True)) == [0, 1, 2, 3, 4]


def test_tenant_page_charts_the_last_day(admin_client_root, make_tenant) -> None:
    tenant = make_tenant()
    empty = admin_client_root.get(f"/admin/tenants/tenant/{tenant.id}/change/")
    assert b"No samples in the last 24 hours" in empty.content
    now = timezone.now()
    for minutes, value in ((5, 1), (3, 4), (1, 9)):
        at = now - timedelta(minutes=minutes)
        TenantMetric.objects.create(tenant=tenant, metric_name="requests", metric_value=value, recorded_at=at)
    old = now - timedelta(days=2)
    TenantMetric.objects.create(tenant=tenant, metric_name="requests", metric_value=99, recorded_at=old)
    page = admin_client_root.get(f"/admin/tenants/tenant/{tenant.id}/change/").content.decode()
    svg = page.split('data-metric="requests"')[1].split("</svg>")[0]
    points = svg.split('points="')[1].split('"')[0].split()
    assert len(points) == 3  # the sample from two days ago is outside the chart
    assert float(points[-1].split(",")[1]) < float(points[0].split(",")[1])  # 9 is drawn higher than 1
    assert "<td>9</td>" in page
