"""Strict schema validation of every rendered object.

Kubernetes objects: `kubernetes_validate.validate(..., strict=True)` (the kubernetes-validate package, pinned in
requirements-dev.txt) against Kubernetes 1.30 and the newest version it ships. Custom resources (Argo CD, Sealed
Secrets, Prometheus Operator, KEDA): kubernetes-validate has no CRD schemas, so they are validated with jsonschema
against the CRD schemas kept in k8s/schemas/crds/ (from the datreeio CRDs catalog, MIT; see its README), made strict
the same way (unknown fields are errors unless the CRD preserves them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv

from k8s.manifests import K8S_DIR, Obj, object_id

CRD_SCHEMA_DIR = K8S_DIR / "schemas" / "crds"
KUBERNETES_VERSIONS = ("1.30.0", "newest")
CRD_GROUPS = {"argoproj.io", "bitnami.com", "monitoring.coreos.com", "keda.sh"}


@functools.cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _strictify(schema: Any) -> Any:
    """Reject unknown fields wherever a CRD schema lists properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strictify(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strictify(v) for v in schema]
    return schema


@functools.cache
def _crd_validator(group: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
    path = CRD_SCHEMA_DIR / group / f"{kind.lower()}_{version}.json"
    if not path.exists():
        return None
    schema = _strictify(_load_json(path))
    # metadata is typed only as `object` in CRD schemas; check it like any Kubernetes ObjectMeta below.
    return jsonschema.Draft202012Validator(schema)


def _format_error(obj: Obj, err: jsonschema.ValidationError, where: str) -> str:
    path = ".".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{object_id(obj)}: {where}: {path}: {err.message}"


def _check_metadata(obj: Obj) -> Iterator[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        yield f"{object_id(obj)}: metadata.name is missing"
        return
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            if not isinstance(value, str):
                yield f"{object_id(obj)}: metadata.{field}.{key} must be a string, got {value!r}"


def _kubernetes_version(version: str) -> str:
    return kv.latest_version() if version == "newest" else version


def validate_schemas(objs: Iterable[Obj], versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    """Strict schema validation of every object. Returns the problems (empty when all objects are valid)."""
    problems: list[str] = []
    for obj in objs:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group, _, version = api_version.rpartition("/")
        if group in CRD_GROUPS:
            validator = _crd_validator(group, kind, version)
            if validator is None:
                problems.append(f"{object_id(obj)}: no CRD schema for {api_version} {kind} in k8s/schemas/crds")
                continue
            problems += [_format_error(obj, e, f"{group} CRD schema") for e in validator.iter_errors(obj)]
            problems += list(_check_metadata(obj))
            continue
        for k8s_version in versions:
            wanted = _kubernetes_version(k8s_version)
            try:
                kubernetes_validate.validate(obj, wanted, strict=True)
            except kubernetes_validate.ValidationError as err:
                problems.append(_format_error(obj, err, f"Kubernetes {err.version} schema"))
            except kubernetes_validate.SchemaNotFoundError:
                label = f"Kubernetes {kv.major_minor(wanted)} schemas"
                problems.append(f"{object_id(obj)}: {api_version} {kind} is not in the {label}")
    return problems
