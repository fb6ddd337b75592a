"""Hardening policies, checked by checkov (pinned in scripts/install-checkov.sh) over each rendered overlay.

checkov's Kubernetes checks cover every hardening rule the project had in Python (#16; the list of which check
covers which rule is in docs/decisions.md): non-root (CKV_K8S_23, CKV_K8S_40), no privilege escalation
(CKV_K8S_20), read-only root filesystem (CKV_K8S_22), capabilities dropped and none added (CKV_K8S_37, CKV_K8S_25,
CKV_K8S_28, CKV_K8S_39), not privileged (CKV_K8S_16), no host namespaces (CKV_K8S_17/18/19), the default seccomp
profile (CKV_K8S_31), no service-account token (CKV_K8S_38), CPU and memory requests and limits (CKV_K8S_10-13), a
fixed image tag or digest (CKV_K8S_14, CKV_K8S_43), liveness and readiness probes on long-running workloads
(CKV_K8S_8, CKV_K8S_9). Every finding must be listed in k8s/checkov-accepted.yaml with its reason, and every listed
one must still occur.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import yaml

from k8s.manifests import K8S_DIR, OVERLAYS, CheckError, Obj, checkov

ACCEPTED_FILE = K8S_DIR / "checkov-accepted.yaml"
Finding = tuple[str, str]  # (check id, checkov's resource name `Kind.namespace.name`)


def checkov_findings(objs: Iterable[Obj]) -> set[Finding]:
    """checkov's failed Kubernetes checks on `objs`, run on them written to one manifest file."""
    with tempfile.TemporaryDirectory(prefix="percolate-checkov-") as tmp:
        manifest = Path(tmp) / "manifest.yaml"
        manifest.write_text(yaml.safe_dump_all(list(objs), sort_keys=False))
        proc = subprocess.run(  # noqa: S603 (our own checkov, fixed arguments)
            [checkov(), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json",
             "--skip-download"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    if not proc.stdout:
        raise CheckError(f"checkov printed nothing: {proc.stderr[-2000:]}")
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    if not sum(r.get("summary", {}).get("passed", 0) for r in reports):
        raise CheckError(f"checkov ran no checks: {proc.stderr[-2000:]}")
    return {(f["check_id"], f["resource"]) for r in reports for f in r.get("results", {}).get("failed_checks", [])}


def accepted_findings(env: str) -> set[Finding]:
    """The findings k8s/checkov-accepted.yaml accepts in `env` (an entry without `envs` holds for every overlay)."""
    accepted: set[Finding] = set()
    for check, entry in yaml.safe_load(ACCEPTED_FILE.read_text()).items():
        if not str(entry.get("reason", "")).strip():
            continue
        if env in entry.get("envs", OVERLAYS):
            accepted.update((check, resource) for resource in entry["resources"])
    return accepted


def hardening_problems(env: str, objs: Iterable[Obj]) -> list[str]:
    """checkov's findings not accepted for `env`, and accepted ones that no longer occur (so the list cannot rot)."""
    found, accepted = checkov_findings(objs), accepted_findings(env)
    return [f"{resource}: checkov {check} fails (not accepted in checkov-accepted.yaml)" for check, resource in
            sorted(found - accepted)] + [
        f"{resource}: checkov {check} is accepted in checkov-accepted.yaml but no longer found"
        for check, resource in sorted(accepted - found)
    ]  # fmt: skip
