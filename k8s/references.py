"""Files the manifests and runbooks point at exist (#19 defect 12): a comment or a runbook that names a path sends
an operator to it in the middle of an incident."""

from __future__ import annotations

import re

from k8s.manifests import REPO_ROOT

SCANNED = ("k8s", "argo", "docs/runbooks")
ROOTS = "docs|k8s|argo|scripts|bench|tiernode|gateway|percolate_platform|tenants|archival|backups|billing|accounts"
PATH = re.compile(rf"(?<![\w/.-])((?:{ROOTS})/[\w./-]*\w\.(?:md|py|yaml|yml|json|sh|txt))\b")
RUNBOOK = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")


def check_references() -> list[str]:
    problems = []
    for folder in SCANNED:
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.suffix not in (".md", ".yaml", ".yml", ".py", ".json") or "tests" in path.parts:
                continue
            text = path.read_text()
            where = path.relative_to(REPO_ROOT)
            for ref in sorted(set(PATH.findall(text))):
                if not (REPO_ROOT / ref).exists():
                    problems.append(f"{where}: points at {ref}, which does not exist")
            for name in sorted(set(RUNBOOK.findall(text))):
                if name in ("README.md", "CHANGELOG.md") or "/" in name:
                    continue
                if not (REPO_ROOT / "docs" / "runbooks" / name).exists() and not list(REPO_ROOT.glob(f"*/{name}")):
                    problems.append(f"{where}: names runbook {name}, which does not exist")
    return problems
