"""Drift between what the code reads from the environment and what the manifests set, per workload (#19 defect 5).

The code's reads are found in the source of the packages each image carries (the Dockerfile's COPY lines for the
platform image, `tiernode` for the tier image): `env.<type>("NAME")` (django-environ), `os.environ.get("NAME")`,
`os.environ["NAME"]`, and the tier node's `env.get("NAME")` / `_int(env, "NAME")`; an f-string name
(`GATEWAY_PODS_{tier}`) is a pattern. What a workload gets is its container's environment (k8s/runtime.py) plus the
image's own ENV. django-environ's FileAwareEnv reads `NAME_FILE` for `NAME`, so the platform image's `NAME_FILE`
counts as `NAME`.

Every difference must be listed in k8s/env-allowed.yaml with a reason, or the check fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from k8s.manifests import K8S_DIR, REPO_ROOT, Obj, object_id
from k8s.runtime import container_env, containers, image_name, workloads

ALLOWED_FILE = K8S_DIR / "env-allowed.yaml"
READ = re.compile(
    r"""(?:\benv|environ)\.(?:str|int|bool|float|list|json|db|url|dict|get|setdefault)\("""
    r"""\s*f?["']([A-Z][A-Z0-9_]*(?:\{\w+\}[A-Z0-9_]*)*)["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]+)["']\]"""
    r"""|_(?:int|float|seconds)\(env,\s*["']([A-Z][A-Z0-9_]+)["']"""
)
TIER_IMAGE_PACKAGES = ("tiernode",)
OUR_IMAGES = {"percolate-platform", "percolate", "percolate-tiernode"}


def platform_packages() -> tuple[str, ...]:
    """The folders the Dockerfile copies into the platform image."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    stage = text.split("AS platform", 1)[1].split("AS tiernode", 1)[0]
    return tuple(m.group(1) for m in re.finditer(r"^COPY --chown=\S+ (\w+) \./\1$", stage, re.M))


def image_env() -> set[str]:
    """Names the platform image's ENV sets (inherited by the tiernode target)."""
    text = (REPO_ROOT / "Dockerfile").read_text().split("AS platform", 1)[1]
    block = re.search(r"^ENV ((?:.*\\\n)*.*)$", text, re.M)
    return set(re.findall(r"([A-Z][A-Z0-9_]*)=", block.group(1))) if block else set()


def code_reads(packages: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for package in packages:
        root = REPO_ROOT / package
        files = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
        for path in files:
            if "tests" in path.relative_to(REPO_ROOT).parts or path.name == "conftest.py":
                continue
            for m in READ.finditer(path.read_text()):
                names.add(next(g for g in m.groups() if g))
    return names


def _matches(name: str, read: str) -> bool:
    return re.fullmatch(re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(read)), name) is not None


@dataclass(frozen=True)
class Allowed:
    unset: dict[str, str]  # name (or pattern as the code spells it) -> reason; per workload with "workload:NAME"
    unread: dict[str, str]


def allowed() -> Allowed:
    doc = yaml.safe_load(ALLOWED_FILE.read_text())
    out: dict[str, dict[str, str]] = {"unset": {}, "unread": {}}
    for section in out:
        for entry in doc.get(section) or []:
            for name in entry["names"]:
                for who in entry.get("workloads") or ["*"]:
                    out[section][f"{who}:{name}"] = entry["reason"]
    return Allowed(**out)


def _is_allowed(table: dict[str, str], workload: str, name: str) -> bool:
    return f"{workload}:{name}" in table or f"*:{name}" in table


def check_env_drift(objs: list[Obj]) -> list[str]:
    platform_reads, tier_reads, baked = code_reads(platform_packages()), code_reads(TIER_IMAGE_PACKAGES), image_env()
    allow = allowed()
    problems = []
    for obj in workloads(objs):
        name = obj["metadata"]["name"]
        for c in containers(obj):
            image = image_name(c)
            if image not in OUR_IMAGES:
                continue  # dev's postgres and redis: not our code
            platform = image == "percolate-platform"
            reads = platform_reads if platform else tier_reads
            sets = set(container_env(objs, c))
            if platform:  # the image's ENV; FileAwareEnv: NAME_FILE is NAME
                sets |= baked | {s.removesuffix("_FILE") for s in sets if s.endswith("_FILE")}
            where = f"{object_id(obj)} container {c['name']}"
            for var in sorted(sets):
                is_read = any(_matches(var, r) for r in reads) or (platform and var.endswith("_FILE"))
                if not is_read and not _is_allowed(allow.unread, name, var):
                    problems.append(f"{where}: sets {var}, which its code never reads")
            for read in sorted(reads):
                if not any(_matches(var, read) for var in sets) and not _is_allowed(allow.unset, name, read):
                    problems.append(f"{where}: its code reads {read}, which the manifests never set")
    return problems


def stale_allowances(objs: list[Obj]) -> list[str]:
    """Entries in env-allowed.yaml that no longer excuse anything (so the list cannot rot)."""
    every_read = code_reads(platform_packages()) | code_reads(TIER_IMAGE_PACKAGES)
    every_set = {v for o in workloads(objs) for c in containers(o) for v in container_env(objs, c)} | image_env()
    every_set |= {v.removesuffix("_FILE") for v in every_set}
    problems = []
    for key in allowed().unset:
        if key.split(":", 1)[1] not in every_read:
            problems.append(f"{Path(ALLOWED_FILE).name}: unset {key} is read by no code")
    for key in allowed().unread:
        name = key.split(":", 1)[1]
        if name not in every_set:
            problems.append(f"{Path(ALLOWED_FILE).name}: unread {key} is set by no manifest")
        if any(_matches(name, read) for read in every_read):
            problems.append(f"{Path(ALLOWED_FILE).name}: unread {key} is read by the code now")
    return problems
