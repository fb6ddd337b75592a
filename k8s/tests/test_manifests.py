"""Every overlay renders with `kubectl kustomize` and every object validates strictly (Kubernetes 1.30 and newest,
CRDs against k8s/schemas/crds); hardening and isolation policies hold; tier figures match tier_policy.py."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from k8s import checks, hardening, isolation, manifests, references, schemas, tier_figures

ENVS = manifests.OVERLAYS


def test_crd_schemas_are_in_the_repository():
    crds = schemas.CRD_SCHEMA_DIR
    assert crds.is_relative_to(manifests.REPO_ROOT)
    assert (crds / "LICENSE").is_file() and (crds / "README.md").is_file()
    for group, kind in [
        ("argoproj.io", "application"),
        ("bitnami.com", "sealedsecret"),
        ("monitoring.coreos.com", "prometheusrule"),
    ]:
        assert list((crds / group).glob(f"{kind}_*.json")), f"{group}/{kind} schema missing in {crds}"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("part", manifests.APP_PARTS)
def test_each_argo_app_folder_renders(env, part):
    objs = manifests.render(f"k8s/overlays/{env}/{part}")
    assert objs, f"k8s/overlays/{env}/{part} renders nothing"


@pytest.mark.parametrize("env", ENVS)
def test_overlay_validates_strictly(env):
    objs = manifests.rendered_overlay(env)
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "HorizontalPodAutoscaler", "SealedSecret", "PrometheusRule", "NetworkPolicy"} <= kinds
    assert schemas.validate_schemas(objs) == []


@pytest.mark.parametrize("env", ENVS)
def test_network_isolation(env):
    assert isolation.check_network_isolation(manifests.rendered_overlay(env)) == []


@pytest.mark.parametrize("env", ENVS)
def test_tier_figures_agree_with_tier_policy(env):
    assert tier_figures.check_tier_figures(manifests.rendered_overlay(env)) == []


def test_tier_a_spike_figures_and_probes():
    objs = manifests.rendered_overlay("prod")
    dep = manifests.find(objs, "Deployment", "tier-a")
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
    objs = manifests.rendered_overlay("prod")

    def mem(tier):
        c = manifests.find(objs, "Deployment", f"tier-{tier}")["spec"]["template"]["spec"]["containers"][0]
        return c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"]

    assert [mem(t) for t in "abc"] == [("5Gi", "5Gi"), ("3Gi", "4Gi"), ("2Gi", "2560Mi")]


def test_tiers_have_services_headless_services_and_pdbs():
    objs = manifests.rendered_overlay("prod")
    for t in "abc":
        headless = manifests.find(objs, "Service", f"tier-headless-{t}")
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == {"app.kubernetes.io/name": "tier-node", "percolate.io/tier": t}
        manifests.find(objs, "Service", f"tier-{t}")
        pdb = manifests.find(objs, "PodDisruptionBudget", f"tier-{t}")
        assert pdb["spec"]["selector"]["matchLabels"]["percolate.io/tier"] == t


def test_platform_processes():
    objs = manifests.rendered_overlay("prod")
    gw = manifests.find(objs, "Deployment", "gateway")
    assert gw["spec"]["replicas"] == 3
    lb = manifests.find(objs, "Service", "gateway")
    assert lb["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in lb["spec"]["ports"]] == [(443, "http")]
    assert gw["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    assert manifests.find(objs, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 3
    beat = manifests.find(objs, "StatefulSet", "beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["podManagementPolicy"] == "OrderedReady"
    assert beat["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
        "celery",
        "-A",
        "percolate_platform",
        "beat",
    ]
    worker = manifests.find(objs, "Deployment", "worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
        "celery",
        "-A",
        "percolate_platform",
        "worker",
    ]
    web = manifests.find(objs, "Deployment", "web")
    assert web["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["gunicorn", "percolate_platform.wsgi"]
    job = manifests.find(objs, "Job", "migrate")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["python", "manage.py", "migrate", "--noinput"]


def test_tenant_data_volume_is_shared_by_tier_pods_and_workers():
    objs = manifests.rendered_overlay("prod")
    pvc = manifests.find(objs, "PersistentVolumeClaim", "tenant-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("tier-a", "tier-b", "tier-c", "worker"):
        spec = manifests.find(objs, "Deployment", name)["spec"]["template"]["spec"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims == ["tenant-data"], name
        env = spec["containers"][0].get("envFrom")
        assert env, name


def test_platform_settings_env_points_secrets_at_files():
    objs = manifests.rendered_overlay("prod")
    data = manifests.find(objs, "ConfigMap", "platform-config")["data"]
    sealed = manifests.find(objs, "SealedSecret", "platform-secrets")["spec"]["encryptedData"]
    assert data["DJANGO_DEBUG"] == "false"
    assert data["TENANT_DATA_ROOT"] == "/data"
    for key in sealed:
        assert data[f"{key}_FILE"] == f"/run/secrets/percolate/{key}"
        assert key not in data, f"{key} must come from the sealed secret, not the ConfigMap"


@pytest.mark.parametrize("env", ENVS)
def test_every_namespaced_object_has_a_namespace(env):
    cluster_scoped = {"Namespace"}
    for obj in manifests.rendered_overlay(env):
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") in ("percolate", "monitoring"), manifests.object_id(obj)


def test_image_names_are_set_in_one_place_per_overlay():
    for env in ENVS:
        images = yaml.safe_load((manifests.K8S_DIR / "overlays" / env / "images" / "kustomization.yaml").read_text())
        allowed = {
            f"{i.get('newName', i['name'])}:{i['newTag']}" + (f"@{i['digest']}" if "digest" in i else "")
            for i in images["images"]
        }
        used = set()
        for obj in manifests.rendered_overlay(env):
            spec = manifests.pod_spec(obj)
            for c in (spec or {}).get("containers", []):
                used.add(c["image"])
        assert used and used <= allowed, (env, used - allowed)
    kustomizations = list(manifests.K8S_DIR.rglob("kustomization.yaml"))
    with_images = [p for p in kustomizations if "images" in (yaml.safe_load(p.read_text()) or {})]
    assert sorted(p.parent.relative_to(manifests.K8S_DIR).as_posix() for p in with_images) == [
        "overlays/dev/images",
        "overlays/prod/images",
    ]


def _copy_repo_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(manifests.K8S_DIR, root / "k8s", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return root


def test_broken_manifest_is_reported_naming_the_object(tmp_path):
    """A string replica count (kubernetes-validate) and a missing memory limit (checkov) make the checks fail, naming
    the object."""
    root = _copy_repo_tree(tmp_path)
    gateway = root / "k8s" / "gateway" / "deployment.yaml"
    gateway.write_text(gateway.read_text().replace("  replicas: 3\n", '  replicas: "3"\n', 1))
    web = root / "k8s" / "platform" / "web.yaml"
    text = web.read_text()
    assert 'limits: {cpu: "1", memory: 1Gi}' in text
    web.write_text(text.replace('limits: {cpu: "1", memory: 1Gi}', 'limits: {cpu: "1"}'))

    objs = manifests.render_path(root / "k8s" / "overlays" / "prod")
    problems = checks.all_problems(objs)
    assert any(
        p.startswith("Deployment/percolate/gateway:") and "spec.replicas" in p and "'3' is not of type 'integer'" in p
        for p in problems
    ), problems
    assert all(p.startswith("Deployment/percolate/gateway:") for p in problems), problems
    assert hardening.hardening_problems("prod", objs) == [
        "Deployment.percolate.web: checkov CKV_K8S_13 fails (not accepted in checkov-accepted.yaml)"
    ]


def test_broken_tier_figure_is_reported(tmp_path):
    root = _copy_repo_tree(tmp_path)
    patch = root / "k8s" / "tiers" / "c" / "hpa-patch.yaml"
    patch.write_text(patch.read_text().replace('averageValue: "20"', 'averageValue: "25"'))
    problems = tier_figures.check_tier_figures(manifests.render_path(root / "k8s" / "overlays" / "prod"))
    assert len(problems) == 1 and problems[0].startswith("HorizontalPodAutoscaler/percolate/tier-c:"), problems


def test_hardening_checks_catch_insecure_containers():
    """checkov (k8s/hardening.py) flags each hardening rule the worker breaks once its securityContext, probes,
    resources, image tag and pod-level settings are taken away."""
    objs = manifests.rendered_overlay("prod")
    dep = manifests.find(objs, "Deployment", "worker")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    c["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]}, "privileged": True, "runAsUser": 0}
    c.pop("livenessProbe")
    c.pop("readinessProbe")
    c.pop("resources")
    c["image"] = "percolate-platform:latest"
    spec.update(hostNetwork=True, hostPID=True, hostIPC=True, securityContext={})
    spec.pop("automountServiceAccountToken")
    found = {
        check for check, resource in hardening.checkov_findings([dep]) if resource == "Deployment.percolate.worker"
    }
    expected = {
        "CKV_K8S_8": "livenessProbe",
        "CKV_K8S_9": "readinessProbe",
        "CKV_K8S_10": "CPU requests",
        "CKV_K8S_11": "CPU limits",
        "CKV_K8S_12": "memory requests",
        "CKV_K8S_13": "memory limits",
        "CKV_K8S_14": "image tag latest",
        "CKV_K8S_16": "privileged",
        "CKV_K8S_17": "hostPID",
        "CKV_K8S_18": "hostIPC",
        "CKV_K8S_19": "hostNetwork",
        "CKV_K8S_20": "allowPrivilegeEscalation",
        "CKV_K8S_22": "readOnlyRootFilesystem",
        "CKV_K8S_23": "runAsNonRoot",
        "CKV_K8S_25": "added capabilities",
        "CKV_K8S_31": "seccomp profile",
        "CKV_K8S_37": "capabilities drop ALL",
        "CKV_K8S_38": "automountServiceAccountToken",
        "CKV_K8S_40": "runAsUser root",
        "CKV_K8S_43": "image digest",
    }
    assert {check: expected[check] for check in expected if check not in found} == {}


def test_isolation_checks_catch_open_tier_pods_and_datastore_egress():
    objs = manifests.rendered_overlay("dev")
    pol = manifests.find(objs, "NetworkPolicy", "tier-node-ingress-from-gateway")
    pol["spec"]["ingress"][0].pop("from")
    egress = manifests.find(objs, "NetworkPolicy", "tier-node-egress-to-platform-api")
    egress["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 5432})
    problems = isolation.check_network_isolation(objs)
    assert any(p.startswith("NetworkPolicy/percolate/tier-node-ingress-from-gateway: opens") for p in problems)
    assert any(
        p.startswith("NetworkPolicy/percolate/tier-node-egress-to-platform-api: lets Deployment/percolate/tier-a")
        for p in problems
    )


def test_each_tier_pod_listener_is_open_only_to_its_own_callers():
    """The public port (chat) to the gateway alone; the internal API port to the gateway and the workers."""
    objs = manifests.rendered_overlay("dev")
    assert isolation.check_network_isolation(objs) == []
    public = manifests.find(objs, "NetworkPolicy", "tier-node-ingress-from-gateway")
    public["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "worker"}}})
    internal = manifests.find(objs, "NetworkPolicy", "tier-node-ingress-internal")
    internal["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}})
    scrape = manifests.find(objs, "NetworkPolicy", "allow-prometheus-scrape")
    scrape["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 8001})
    problems = isolation.check_network_isolation(objs)
    expected = [
        "tier-node-ingress-from-gateway: lets pods other than gateway reach port 8000",
        "tier-node-ingress-internal: lets pods other than gateway and worker reach port 8001",
    ]
    for message in expected:
        assert any(message in p for p in problems), message
    assert any("allow-prometheus-scrape: opens the internal API port" in p for p in problems)


def test_tier_pods_name_themselves_by_their_internal_address_and_the_gateway_knows_the_port():
    objs = manifests.rendered_overlay("dev")
    for tier in "abc":
        container = manifests.find(objs, "Deployment", f"tier-{tier}")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8000, "internal": 8001}
        assert env["INTERNAL_PORT"] == "8001" and env["POD_ID"] == "$(POD_IP):8001"
    gateway = manifests.find(objs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["GATEWAY_POD_PORT"] == "8000" and env["GATEWAY_POD_INTERNAL_PORT"] == "8001"


def test_prod_pulls_every_image_by_digest():
    """A tag can be moved under a running release; a digest cannot (checkov CKV_K8S_43)."""
    for obj in manifests.rendered_overlay("prod"):
        for c in (manifests.pod_spec(obj) or {}).get("containers", []) + (manifests.pod_spec(obj) or {}).get(
            "initContainers", []
        ):
            assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), (manifests.object_id(obj), c["image"])


def test_every_path_the_manifests_and_runbooks_name_exists():
    assert references.check_references() == []
