"""Argo CD: the root app, the AppProjects and the child Applications validate against the Argo CD CRD schemas,
point at folders that render, sync in waves with prune/self-heal/retry, ignore HPA-owned replica counts, and the
project allows exactly what the apps render."""

import copy

import pytest
import yaml

from k8s import manifests, schemas

BOOTSTRAP = manifests.ARGO_DIR / "bootstrap"
WAVES = {"base": 0, "platform": 1, "tiers": 2, "gateway": 2, "monitoring": 1}


def argo_objects(env):
    return copy.deepcopy(list(manifests.render(f"argo/{env}")))


def bootstrap_objects():
    return [doc for path in sorted(BOOTSTRAP.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_bootstrap_and_apps_validate():
    objs = bootstrap_objects() + argo_objects("prod") + argo_objects("dev")
    assert schemas.validate_schemas(objs) == []


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_root_app_points_at_the_env_apps(env):
    root = yaml.safe_load((BOOTSTRAP / f"root-app-{env}.yaml").read_text())
    assert root["spec"]["source"]["path"] == f"argo/{env}"
    assert root["spec"]["project"] == "percolate-root"
    assert root["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    project = yaml.safe_load((BOOTSTRAP / "root-project.yaml").read_text())
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    kinds = {(o["apiVersion"].split("/")[0], o["kind"]) for o in argo_objects(env)}
    assert kinds <= allowed
    assert root["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_child_applications(env):
    objs = argo_objects(env)
    apps = {o["metadata"]["name"].removeprefix("percolate-"): o for o in objs if o["kind"] == "Application"}
    project = manifests.find(bootstrap_objects(), "AppProject", "percolate")
    assert set(apps) == set(manifests.APP_PARTS)
    whitelist = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    cluster_whitelist = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    destinations = {d["namespace"] for d in project["spec"]["destinations"]}
    for part, app in apps.items():
        spec = app["spec"]
        where = f"Application/argocd/percolate-{part}"
        assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) == WAVES[part], where
        assert spec["project"] == "percolate", where
        assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"], where
        assert spec["source"]["path"] == f"k8s/overlays/{env}/{part}", where
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}, where
        backoff = spec["syncPolicy"]["retry"]["backoff"]
        assert spec["syncPolicy"]["retry"]["limit"] >= 3 and backoff["factor"] >= 2, where
        rendered = manifests.render(spec["source"]["path"])
        for obj in rendered:
            group = obj["apiVersion"].rpartition("/")[0]
            key = (group, obj["kind"])
            if obj["kind"] == "Namespace":
                assert key in cluster_whitelist, f"{where}: {manifests.object_id(obj)} not allowed by the project"
            else:
                assert key in whitelist, f"{where}: {manifests.object_id(obj)} kind not allowed by the project"
                assert obj["metadata"]["namespace"] in destinations, f"{where}: {manifests.object_id(obj)}"
        scaled = {h["spec"]["scaleTargetRef"]["name"] for h in rendered if h["kind"] == "HorizontalPodAutoscaler"}
        if scaled:
            ignored = spec.get("ignoreDifferences") or []
            assert any(
                i["kind"] == "Deployment" and "/spec/replicas" in i.get("jsonPointers", []) and "name" not in i
                for i in ignored
            ), f"{where}: HPA-managed replicas of {scaled} not in ignoreDifferences"
            assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"], where


def test_migration_runs_before_web_and_workers():
    rendered = manifests.render("k8s/overlays/prod/platform")
    job = manifests.find(rendered, "Job", "migrate")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"


def test_argocd_cm_restores_application_health():
    cm = yaml.safe_load((BOOTSTRAP / "argocd-cm-health.yaml").read_text())
    lua = cm["data"]["resource.customizations.health.argoproj.io_Application"]
    assert "obj.status.health.status" in lua
