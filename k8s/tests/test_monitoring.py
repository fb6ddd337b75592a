"""Alert rules pass `promtool check rules` and their unit tests (`promtool test rules`, with should-not-fire
cases); dashboards parse, carry the sidecar label, and query only metrics listed in exported-metrics.txt."""

import json
import shutil

import pytest
import yaml

from k8s import manifests, metrics

RULE_TESTS = manifests.K8S_DIR / "monitoring" / "rules" / "tests"


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rules")
    files = metrics.prometheus_rule_files(manifests.rendered_overlay("prod"), directory)
    assert [f.name for f in files] == ["percolate-alerts.rules.yaml"]
    for test_file in RULE_TESTS.glob("*.test.yaml"):
        shutil.copy(test_file, directory / test_file.name)
    return directory


def test_promtool_check_rules(rule_dir):
    proc = metrics.run_promtool(["check", "rules", "percolate-alerts.rules.yaml"], rule_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests(rule_dir):
    tests = sorted(p.name for p in rule_dir.glob("*.test.yaml"))
    assert tests
    proc = metrics.run_promtool(["test", "rules", *tests], rule_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_test_case():
    rules = manifests.find(manifests.rendered_overlay("prod"), "PrometheusRule", "percolate-alerts")
    alerts = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {
        "PercolateTierAtMaxReplicas",
        "PercolateGatewayHigh5xxRatio",
        "PercolateColdStartSlowFirstByte",
        "PercolateArchivalJobFailures",
        "PercolateTierMovesFailing",
        "PercolateWebhookProcessingFailures",
        "PercolateBillingEventsLagging",
        "PercolateCeleryQueueBacklog",
        "PercolatePlatformBackupMissing",
        "PercolateRestoreDrillMissing",
        "PercolateArchiveDrillFailed",
        "PercolateArchiveDrillMissing",
    }
    fires: set[str] = set()
    quiet: set[str] = set()
    for test_file in RULE_TESTS.glob("*.test.yaml"):
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    assert alerts <= fires, alerts - fires
    assert alerts <= quiet, alerts - quiet


def test_promtool_catches_a_broken_rule(tmp_path):
    (tmp_path / "bad.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "Broken", "expr": "sum(rate(x[5m]) >"}]}]})
    )
    proc = metrics.run_promtool(["check", "rules", "bad.rules.yaml"], tmp_path)
    assert proc.returncode != 0


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_monitoring_checks(env):
    assert metrics.check_monitoring(manifests.rendered_overlay(env)) == []


def test_dashboards_cover_tiers_gateway_and_jobs():
    boards = metrics.dashboards(manifests.rendered_overlay("prod"))
    by_name = {cm["metadata"]["name"]: (cm, board) for cm, _, board in boards}
    assert set(by_name) == {
        "grafana-dashboard-percolate-tiers",
        "grafana-dashboard-percolate-gateway",
        "grafana-dashboard-percolate-jobs",
    }
    for cm, board in by_name.values():
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert board["uid"] and board["panels"]
    used = set()
    for _, board in by_name.values():
        for _, expr in metrics.dashboard_queries(board):
            used |= metrics.promql_metric_names(expr)
    for metric in (
        "percolate_hot_tenants_count",
        "percolate_warm_tenants_count",
        "kube_deployment_status_replicas",
        "percolate_gateway_requests_total",
        "percolate_gateway_request_duration_seconds_bucket",
        "percolate_gateway_cold_starts_total",
        "percolate_archival_jobs_total",
        "percolate_billing_events_total",
    ):
        assert metric in used, metric


def test_dashboard_check_rejects_unknown_metric():
    objs = manifests.rendered_overlay("prod")
    cm = manifests.find(objs, "ConfigMap", "grafana-dashboard-percolate-gateway")
    key = next(iter(cm["data"]))
    board = json.loads(cm["data"][key])
    board["panels"][0]["targets"][0]["expr"] = 'sum(rate(percolate_gateway_requests_totl{status="500"}[5m]))'
    cm["data"][key] = json.dumps(board)
    problems = metrics.check_monitoring(objs)
    assert problems == [
        f"ConfigMap/monitoring/grafana-dashboard-percolate-gateway: {key} panel "
        f"'Requests per second by tier' queries percolate_gateway_requests_totl, "
        f"not in exported-metrics.txt"
    ]


def test_promql_metric_names():
    expr = (
        "histogram_quantile(0.95, sum by (le, tier) (rate(percolate_tenant_load_seconds_bucket"
        '{tier=~"$tier", x="a b"}[$__rate_interval]))) / on (tier) group_left max(up) > bool 2'
    )
    assert metrics.promql_metric_names(expr) == {"percolate_tenant_load_seconds_bucket", "up"}


def test_adapter_serves_hot_tenants_count_from_the_tier_metric():
    cm = manifests.find(manifests.rendered_overlay("prod"), "ConfigMap", "prometheus-adapter-percolate")
    rules = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    assert len(rules) == 1
    assert rules[0]["seriesQuery"].startswith("percolate_hot_tenants_count{")
    assert rules[0]["name"] == {"matches": "^percolate_(hot_tenants_count)$", "as": "${1}"}
    assert set(rules[0]["resources"]["overrides"]) == {"namespace", "pod"}
