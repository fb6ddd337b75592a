"""Argo CD's order against readiness: when each rendered object is applied, what it needs before it can become
healthy, and whether that is applied no later.

An object's place is (its Application's sync wave, its hook phase, its own sync wave): Argo CD (with the Application
health check of argo/bootstrap/argocd-cm-health.yaml) applies the next place only when everything before it is
healthy, so an object whose health needs one of a later place never becomes healthy and the sync never finishes.

- check_wave_dependencies: a wave whose health depends on a later wave (#19 defect 2)
- check_migration_gate: a workload that reads the database without a migration gate (#19 defect 3)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from k8s.manifests import K8S_DIR, Obj, object_id, pod_spec, render
from k8s.metrics import promql_metric_names

WAVE = "argocd.argoproj.io/sync-wave"
HOOK = "argocd.argoproj.io/hook"
PHASES = {"PreSync": 0, "Sync": 1, "PostSync": 2}
# Volume binding of the cluster's default storage class: kind's (`standard`, local-path) and EKS's gp2/gp3 wait for
# the first pod. Other classes are read from k8s/cluster/<env>/ (installed at bootstrap).
DEFAULT_BINDING_MODE = "WaitForFirstConsumer"
# Objects the cluster or a controller provides, not an app: cert-manager's certificate secrets.
EXTERNAL = re.compile(r"^Secret/[^/]+/.*-tls$")


@dataclass(frozen=True)
class Placed:
    app: str
    place: tuple[int, int, int]
    obj: Obj

    @property
    def id(self) -> str:
        return object_id(self.obj)


def _wave(obj: Obj) -> int:
    return int((obj.get("metadata", {}).get("annotations") or {}).get(WAVE, "0"))


def placed_objects(env: str) -> list[Placed]:
    """Every object the env's child Applications render, with its place in the sync order."""
    out = []
    for app in render(f"argo/{env}"):
        if app.get("kind") != "Application":
            continue
        app_wave = _wave(app)
        for obj in render(app["spec"]["source"]["path"]):
            hook = (obj.get("metadata", {}).get("annotations") or {}).get(HOOK, "Sync")
            place = (app_wave, PHASES.get(hook.split(",")[0], 1), _wave(obj))
            out.append(Placed(app["metadata"]["name"], place, obj))
    return out


def storage_classes(env: str) -> dict[str, Obj]:
    """The StorageClasses installed with the cluster (k8s/cluster/<env>/*.yaml), by name."""
    found = {}
    for path in sorted((K8S_DIR / "cluster" / env).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "StorageClass":
                found[doc["metadata"]["name"]] = doc
    return found


def _ref(kind: str, ns: str, name: str) -> str:
    return f"{kind}/{ns}/{name}"


def needs(obj: Obj, placed: list[Placed]) -> Iterator[tuple[str, str]]:
    """(object id, why) of everything this object's health waits for."""
    ns = obj.get("metadata", {}).get("namespace", "-")
    spec = pod_spec(obj)
    if spec is not None:
        if spec.get("serviceAccountName"):
            yield _ref("ServiceAccount", ns, spec["serviceAccountName"]), "its service account"
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for src in c.get("envFrom") or []:
                if "configMapRef" in src:
                    yield _ref("ConfigMap", ns, src["configMapRef"]["name"]), "envFrom"
                if "secretRef" in src:
                    yield _ref("Secret", ns, src["secretRef"]["name"]), "envFrom"
            for var in c.get("env") or []:
                ref = var.get("valueFrom") or {}
                if "secretKeyRef" in ref:
                    yield _ref("Secret", ns, ref["secretKeyRef"]["name"]), f"env {var['name']}"
                if "configMapKeyRef" in ref:
                    yield _ref("ConfigMap", ns, ref["configMapKeyRef"]["name"]), f"env {var['name']}"
        for vol in spec.get("volumes") or []:
            if "persistentVolumeClaim" in vol:
                yield _ref("PersistentVolumeClaim", ns, vol["persistentVolumeClaim"]["claimName"]), "a volume"
            if "secret" in vol:
                yield _ref("Secret", ns, vol["secret"]["secretName"]), "a volume"
            if "configMap" in vol:
                yield _ref("ConfigMap", ns, vol["configMap"]["name"]), "a volume"
    if obj.get("kind") == "HorizontalPodAutoscaler":
        # Argo CD's HPA health is Degraded while a metric cannot be read: a Pods metric needs the adapter's rules.
        for metric in obj["spec"].get("metrics") or []:
            if metric.get("type") == "Pods":
                name = metric["pods"]["metric"]["name"]
                yield _adapter_serving(name, placed), f"the custom metric {name}"
    if obj.get("kind") == "Ingress":
        for tls in obj["spec"].get("tls") or []:
            yield _ref("Secret", ns, tls["secretName"]), "its TLS certificate"


def _adapter_serving(metric: str, placed: list[Placed]) -> str:
    for p in placed:
        data = p.obj.get("data") or {}
        if p.obj.get("kind") == "ConfigMap" and "adapter" in p.obj["metadata"]["name"] and "config.yaml" in data:
            for rule in yaml.safe_load(data["config.yaml"]).get("rules") or []:
                m = rule.get("name", {}).get("matches", "")
                if any(re.search(m, s) and re.sub(m, rule["name"].get("as", s).replace("${1}", r"\1"), s) == metric
                       for s in promql_metric_names(rule["seriesQuery"])):  # fmt: skip
                    return p.id
    return f"prometheus-adapter rule for {metric}"


def _provider(ref: str, by_id: dict[str, Placed]) -> Placed | None:
    if ref in by_id:
        return by_id[ref]
    if ref.startswith("Secret/"):  # a SealedSecret of the same name makes the Secret
        return by_id.get("SealedSecret/" + ref.removeprefix("Secret/"))
    return None


def check_wave_dependencies(env: str) -> list[str]:
    placed = placed_objects(env)
    by_id = {p.id: p for p in placed}
    problems = []
    for p in placed:
        for ref, why in needs(p.obj, placed):
            provider = _provider(ref, by_id)
            if provider is None:
                if not EXTERNAL.match(ref):
                    problems.append(f"{p.id} ({p.app}): needs {ref} ({why}), which no Application renders")
            elif provider.place > p.place:
                problems.append(
                    f"{p.id} ({p.app}, place {p.place}): needs {ref} ({why}) from {provider.app}, "
                    f"a later place {provider.place}"
                )
        if p.obj.get("kind") == "PersistentVolumeClaim":
            problems += _first_consumer(env, p, placed)
    return problems


def _first_consumer(env: str, pvc: Placed, placed: list[Placed]) -> list[str]:
    """A claim whose class binds only for its first pod stays Pending (Progressing) until a pod uses it."""
    klass = pvc.obj["spec"].get("storageClassName")
    mode = storage_classes(env).get(klass, {}).get("volumeBindingMode", DEFAULT_BINDING_MODE)
    if mode != "WaitForFirstConsumer":
        return []
    name = pvc.obj["metadata"]["name"]
    consumers = [
        p
        for p in placed
        if any(
            (v.get("persistentVolumeClaim") or {}).get("claimName") == name
            for v in (pod_spec(p.obj) or {}).get("volumes") or []
        )
    ]
    if any(c.place <= pvc.place for c in consumers):
        return []
    first = min((c.place for c in consumers), default=None)
    return [
        f"{pvc.id} ({pvc.app}, place {pvc.place}): storage class {klass or '(default)'} binds for the first pod, "
        f"but no pod uses it before place {first}: it stays Pending"
    ]


# --------------------------------------------------------------------------------------------------------------


def waits_for_migrations(obj: Obj) -> bool:
    """An init container that blocks until the schema is current (`manage.py migrate --check` in a loop)."""
    for c in (pod_spec(obj) or {}).get("initContainers") or []:
        words = " ".join(str(a) for a in (c.get("command") or []) + (c.get("args") or []))
        if "migrate --check" in words and ("until" in words or "while" in words):
            return True
    return False


def check_migration_gate(env: str) -> list[str]:
    """Every workload that reads the database runs new code only after the migrations: it is in the same
    Application as the migrate PreSync hook (which runs before every sync of that app), or it waits for them."""
    placed = placed_objects(env)
    configs = {p.id: p.obj for p in placed if p.obj.get("kind") == "ConfigMap"}
    gated_apps = {
        p.app for p in placed if p.obj.get("kind") == "Job" and p.place[1] == PHASES["PreSync"] and _runs_migrate(p.obj)
    }
    problems = []
    for p in placed:
        spec = pod_spec(p.obj)
        if spec is None or _runs_migrate(p.obj):
            continue
        ns = p.obj["metadata"].get("namespace", "-")
        reads = False
        for c in spec.get("containers") or []:
            names = {v["name"] for v in c.get("env") or []}
            for src in c.get("envFrom") or []:
                names |= set((configs.get(_ref("ConfigMap", ns, src.get("configMapRef", {}).get("name", ""))) or {})
                             .get("data", {}))  # fmt: skip
            reads |= bool(names & {"DATABASE_URL", "DATABASE_URL_FILE"})
        if reads and p.app not in gated_apps and not waits_for_migrations(p.obj):
            problems.append(
                f"{p.id} ({p.app}): reads the database but neither syncs behind the migrate PreSync hook nor waits "
                "for migrations (an init container looping on `manage.py migrate --check`)"
            )
    return problems


def _runs_migrate(obj: Obj) -> bool:
    return any(
        "migrate" in (c.get("args") or []) and "--check" not in (c.get("args") or [])
        for c in (pod_spec(obj) or {}).get("containers") or []
    )
