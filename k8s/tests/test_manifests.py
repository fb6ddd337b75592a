"""Every overlay renders with `kubectl kustomize` and every object validates strictly (Kubernetes 1.30 and newest,
CRDs against k8s/schemas/crds); hardening and isolation policies hold; tier figures match tier_policy.py."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from k8s import checks, references

ENVS = checks.OVERLAYS


def test_crd_schemas_are_in_the_repository():
    crds = checks.CRD_SCHEMA_DIR
    assert crds.is_relative_to(checks.REPO_ROOT)
    assert (crds / "LICENSE").is_file() and (crds / "README.md").is_file()
    for group, kind in [
        ("argoproj.io", "application"),
        ("bitnami.com", "sealedsecret"),
        ("monitoring.coreos.com", "prometheusrule"),
    ]:
        assert list((crds / group).glob(f"{kind}_*.json")), f"{group}/{kind} schema missing in {crds}"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("part", checks.APP_PARTS)
def test_each_argo_app_folder_renders(env, part):
    objs = checks.render(f"k8s/overlays/{env}/{part}")
    assert objs, f"k8s/overlays/{env}/{part} renders nothing"


@pytest.mark.parametrize("env", ENVS)
def test_overlay_validates_strictly(env):
    objs = checks.rendered_overlay(env)
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "HorizontalPodAutoscaler", "SealedSecret", "PrometheusRule", "NetworkPolicy"} <= kinds
    assert checks.validate_schemas(objs) == []


@pytest.mark.parametrize("env", ENVS)
def test_hardening(env):
    assert checks.check_hardening(checks.rendered_overlay(env)) == []


@pytest.mark.parametrize("env", ENVS)
def test_network_isolation(env):
    assert checks.check_network_isolation(checks.rendered_overlay(env)) == []


@pytest.mark.parametrize("env", ENVS)
def test_tier_figures_agree_with_tier_policy(env):
    assert checks.check_tier_figures(checks.rendered_overlay(env)) == []


def test_tier_a_spike_figures_and_probes():
    objs = checks.rendered_overlay("prod")
    dep = checks.find(objs, "Deployment", "tier-a")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {  # Guaranteed QoS
        "requests": {"cpu": "2000m", "memory": "5Gi"},
        "limits": {"cpu": "2000m", "memory": "5Gi"},
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert (c["livenessProbe"]["initialDelaySeconds"], c["livenessProbe"]["periodSeconds"]) == (30, 10)
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert (c["readinessProbe"]["initialDelaySeconds"], c["readinessProbe"]["periodSeconds"]) == (10, 5)
    spread = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for s in spread:
        assert s["labelSelector"]["matchLabels"]["percolate.io/tier"] == "a"


def test_lower_tiers_get_smaller_pods():
    objs = checks.rendered_overlay("prod")

    def mem(tier):
        c = checks.find(objs, "Deployment", f"tier-{tier}")["spec"]["template"]["spec"]["containers"][0]
        return c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"]

    assert [mem(t) for t in "abc"] == [("5Gi", "5Gi"), ("3Gi", "4Gi"), ("2Gi", "2560Mi")]


def test_tiers_have_services_headless_services_and_pdbs():
    objs = checks.rendered_overlay("prod")
    for t in "abc":
        headless = checks.find(objs, "Service", f"tier-headless-{t}")
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == {"app.kubernetes.io/name": "tier-node", "percolate.io/tier": t}
        checks.find(objs, "Service", f"tier-{t}")
        pdb = checks.find(objs, "PodDisruptionBudget", f"tier-{t}")
        assert pdb["spec"]["selector"]["matchLabels"]["percolate.io/tier"] == t


def test_platform_processes():
    objs = checks.rendered_overlay("prod")
    gw = checks.find(objs, "Deployment", "gateway")
    assert gw["spec"]["replicas"] == 3
    lb = checks.find(objs, "Service", "gateway")
    assert lb["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in lb["spec"]["ports"]] == [(443, "http")]
    assert gw["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    assert checks.find(objs, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 3
    beat = checks.find(objs, "StatefulSet", "beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["podManagementPolicy"] == "OrderedReady"
    assert beat["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
        "celery",
        "-A",
        "percolate_platform",
        "beat",
    ]
    worker = checks.find(objs, "Deployment", "worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
        "celery",
        "-A",
        "percolate_platform",
        "worker",
    ]
    web = checks.find(objs, "Deployment", "web")
    assert web["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["gunicorn", "percolate_platform.wsgi"]
    job = checks.find(objs, "Job", "migrate")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["python", "manage.py", "migrate", "--noinput"]


def test_tenant_data_volume_is_shared_by_tier_pods_and_workers():
    objs = checks.rendered_overlay("prod")
    pvc = checks.find(objs, "PersistentVolumeClaim", "tenant-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("tier-a", "tier-b", "tier-c", "worker"):
        spec = checks.find(objs, "Deployment", name)["spec"]["template"]["spec"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims == ["tenant-data"], name
        env = spec["containers"][0].get("envFrom")
        assert env, name


def test_platform_settings_env_points_secrets_at_files():
    objs = checks.rendered_overlay("prod")
    data = checks.find(objs, "ConfigMap", "platform-config")["data"]
    sealed = checks.find(objs, "SealedSecret", "platform-secrets")["spec"]["encryptedData"]
    assert data["DJANGO_DEBUG"] == "false"
    assert data["TENANT_DATA_ROOT"] == "/data"
    for key in sealed:
        assert data[f"{key}_FILE"] == f"/run/secrets/percolate/{key}"
        assert key not in data, f"{key} must come from the sealed secret, not the ConfigMap"


@pytest.mark.parametrize("env", ENVS)
def test_every_namespaced_object_has_a_namespace(env):
    cluster_scoped = {"Namespace"}
    for obj in checks.rendered_overlay(env):
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") in ("percolate", "monitoring"), checks.object_id(obj)


def test_image_names_are_set_in_one_place_per_overlay():
    for env in ENVS:
        images = yaml.safe_load((checks.K8S_DIR / "overlays" / env / "images" / "kustomization.yaml").read_text())
        allowed = {
            f"{i.get('newName', i['name'])}:{i['newTag']}" + (f"@{i['digest']}" if "digest" in i else "")
            for i in images["images"]
        }
        used = set()
        for obj in checks.rendered_overlay(env):
            spec = checks.pod_spec(obj)
            for c in (spec or {}).get("containers", []):
                used.add(c["image"])
        assert used and used <= allowed, (env, used - allowed)
    kustomizations = list(checks.K8S_DIR.rglob("kustomization.yaml"))
    with_images = [p for p in kustomizations if "images" in (yaml.safe_load(p.read_text()) or {})]
    assert sorted(p.parent.relative_to(checks.K8S_DIR).as_posix() for p in with_images) == [
        "overlays/dev/images",
        "overlays/prod/images",
    ]


def _copy_repo_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(checks.K8S_DIR, root / "k8s", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return root


def test_broken_manifest_is_reported_naming_the_object(tmp_path):
    """A string replica count and a missing memory limit make the checks fail, naming the object."""
    root = _copy_repo_tree(tmp_path)
    gateway = root / "k8s" / "gateway" / "deployment.yaml"
    gateway.write_text(gateway.read_text().replace("  replicas: 3\n", '  replicas: "3"\n', 1))
    web = root / "k8s" / "platform" / "web.yaml"
    text = web.read_text()
    assert 'limits: {cpu: "1", memory: 1Gi}' in text
    web.write_text(text.replace('limits: {cpu: "1", memory: 1Gi}', 'limits: {cpu: "1"}'))

    objs = checks.render_path(root / "k8s" / "overlays" / "prod")
    problems = checks.all_problems(objs)
    assert any(
        p.startswith("Deployment/percolate/gateway:") and "spec.replicas" in p and "'3' is not of type 'integer'" in p
        for p in problems
    ), problems
    assert "Deployment/percolate/web: container web: missing resources.limits.memory" in problems
    assert all(p.startswith(("Deployment/percolate/gateway:", "Deployment/percolate/web:")) for p in problems), problems


def test_broken_tier_figure_is_reported(tmp_path):
    root = _copy_repo_tree(tmp_path)
    patch = root / "k8s" / "tiers" / "c" / "hpa-patch.yaml"
    patch.write_text(patch.read_text().replace('averageValue: "20"', 'averageValue: "25"'))
    problems = checks.check_tier_figures(checks.render_path(root / "k8s" / "overlays" / "prod"))
    assert len(problems) == 1 and problems[0].startswith("HorizontalPodAutoscaler/percolate/tier-c:"), problems


def test_policy_checks_catch_insecure_containers():
    objs = checks.rendered_overlay("prod")
    dep = checks.find(objs, "Deployment", "worker")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]}}
    c.pop("livenessProbe")
    problems = checks.check_hardening([dep])
    for expected in (
        "allowPrivilegeEscalation must be false",
        "readOnlyRootFilesystem must be true",
        "capabilities.drop must contain ALL",
        "must not add capabilities",
        "missing livenessProbe",
    ):
        assert any(
            p.startswith("Deployment/percolate/worker: container worker:") and expected in p for p in problems
        ), expected


def test_isolation_checks_catch_open_tier_pods_and_datastore_egress():
    objs = checks.rendered_overlay("dev")
    pol = checks.find(objs, "NetworkPolicy", "tier-node-ingress-from-gateway")
    pol["spec"]["ingress"][0].pop("from")
    egress = checks.find(objs, "NetworkPolicy", "tier-node-egress-to-platform-api")
    egress["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 5432})
    problems = checks.check_network_isolation(objs)
    assert any(p.startswith("NetworkPolicy/percolate/tier-node-ingress-from-gateway: opens") for p in problems)
    assert any(
        p.startswith("NetworkPolicy/percolate/tier-node-egress-to-platform-api: lets Deployment/percolate/tier-a")
        for p in problems
    )


def test_each_tier_pod_listener_is_open_only_to_its_own_callers():
    """The public port (chat) to the gateway alone; the internal API port to the gateway and the workers."""
    objs = checks.rendered_overlay("dev")
    assert checks.check_network_isolation(objs) == []
    public = checks.find(objs, "NetworkPolicy", "tier-node-ingress-from-gateway")
    public["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "worker"}}})
    internal = checks.find(objs, "NetworkPolicy", "tier-node-ingress-internal")
    internal["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}})
    scrape = checks.find(objs, "NetworkPolicy", "allow-prometheus-scrape")
    scrape["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 8001})
    problems = checks.check_network_isolation(objs)
    expected = [
        "tier-node-ingress-from-gateway: lets pods other than gateway reach port 8000",
        "tier-node-ingress-internal: lets pods other than gateway and worker reach port 8001",
    ]
    for message in expected:
        assert any(message in p for p in problems), message
    assert any("allow-prometheus-scrape: opens the internal API port" in p for p in problems)


def test_tier_pods_name_themselves_by_their_internal_address_and_the_gateway_knows_the_port():
    objs = checks.rendered_overlay("dev")
    for tier in "abc":
        container = checks.find(objs, "Deployment", f"tier-{tier}")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8000, "internal": 8001}
        assert env["INTERNAL_PORT"] == "8001" and env["POD_ID"] == "$(POD_IP):8001"
    gateway = checks.find(objs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["GATEWAY_POD_PORT"] == "8000" and env["GATEWAY_POD_INTERNAL_PORT"] == "8001"


def test_prod_pulls_every_image_by_digest():
    """A tag can be moved under a running release; a digest cannot (checkov CKV_K8S_43)."""
    for obj in checks.rendered_overlay("prod"):
        for c in (checks.pod_spec(obj) or {}).get("containers", []) + (checks.pod_spec(obj) or {}).get(
            "initContainers", []
        ):
            assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), (checks.object_id(obj), c["image"])


def test_every_path_the_manifests_and_runbooks_name_exists():
    assert references.check_references() == []
