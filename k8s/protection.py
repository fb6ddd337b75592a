"""What deleting or pruning an Argo CD app may take with it, and who may widen what the apps can do (#19 defect 9).

- check_data_protection: every Namespace and PersistentVolumeClaim is neither pruned nor deleted with its app
  (`Prune=false,Delete=false`), and in prod every claim's storage class keeps its volume (reclaimPolicy Retain).
- check_promotion: prod's child Applications are pinned to a release tag (vX.Y.Z), dev's follow main, so a change
  to a shared base reaches prod only through a release.
- check_argo_projects: the root app (synced from argo/, which anyone who can merge may write) creates only
  Applications, never AppProjects or RBAC; its Applications name the project applied at bootstrap; `default` is locked.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from k8s.manifests import ARGO_DIR, Obj, object_id, render
from k8s.waves import storage_classes

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
PROTECTED_KINDS = {"Namespace", "PersistentVolumeClaim"}
GRANTING_KINDS = {"AppProject", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ApplicationSet"}


def check_data_protection(env: str, objs: list[Obj]) -> list[str]:
    problems = []
    classes = storage_classes(env)
    for obj in objs:
        if obj.get("kind") not in PROTECTED_KINDS:
            continue
        options = {o.strip() for o in (obj["metadata"].get("annotations") or {}).get(SYNC_OPTIONS, "").split(",")}
        missing = {"Prune=false", "Delete=false"} - options
        if missing:
            problems.append(f"{object_id(obj)}: {SYNC_OPTIONS} lacks {', '.join(sorted(missing))}")
        if obj["kind"] == "PersistentVolumeClaim" and env == "prod":
            klass = obj["spec"].get("storageClassName")
            policy = classes.get(klass, {}).get("reclaimPolicy", "Delete (the default class)")
            if policy != "Retain":
                problems.append(f"{object_id(obj)}: storage class {klass!r} reclaims with {policy}, not Retain")
    return problems


def bootstrap_objects() -> list[Obj]:
    paths = sorted((ARGO_DIR / "bootstrap").glob("*.yaml"))
    return [doc for path in paths for doc in yaml.safe_load_all(Path(path).read_text()) if doc]


def check_argo_projects(env: str) -> list[str]:
    problems = []
    boot = {(o["kind"], o["metadata"]["name"]): o for o in bootstrap_objects()}
    root = boot.get(("AppProject", "percolate-root"))
    if root is None:
        return ["AppProject/argocd/percolate-root: not in argo/bootstrap"]
    for rule in root["spec"].get("namespaceResourceWhitelist", []) + root["spec"].get("clusterResourceWhitelist", []):
        if rule.get("kind") in GRANTING_KINDS or rule.get("kind") == "*":
            problems.append(f"AppProject/argocd/percolate-root: may create {rule.get('kind')} (widens its own rights)")
    projects = {name for kind, name in boot if kind == "AppProject"}
    for obj in render(f"argo/{env}"):
        if obj.get("kind") in GRANTING_KINDS:
            problems.append(f"{object_id(obj)}: synced by the root app from argo/{env}; apply it at bootstrap")
        if obj.get("kind") == "Application" and obj["spec"].get("project") not in projects - {"default"}:
            problems.append(f"{object_id(obj)}: project {obj['spec'].get('project')!r} is not one applied at bootstrap")
    default = boot.get(("AppProject", "default"))
    if default is None or default["spec"].get("sourceRepos") or default["spec"].get("destinations"):
        problems.append("AppProject/argocd/default: must be locked (no sourceRepos, no destinations) at bootstrap")
    return problems


RELEASE_TAG = re.compile(r"^v\d+\.\d+\.\d+$")


def check_promotion() -> list[str]:
    problems = []
    for env, wanted in (("prod", "a release tag vX.Y.Z"), ("dev", "main")):
        for app in render(f"argo/{env}"):
            if app.get("kind") != "Application":
                continue
            revision = str(app["spec"]["source"].get("targetRevision", "HEAD"))
            ok = RELEASE_TAG.match(revision) if env == "prod" else revision == "main"
            if not ok:
                problems.append(f"{object_id(app)} ({env}): targetRevision {revision!r}, not {wanted}")
    return problems
