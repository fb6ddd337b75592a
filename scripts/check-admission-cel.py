"""Evaluate the CEL of k8s/admission/tier-node-pod-patch.yaml on admission requests a tier node could send.

No Kubernetes API server runs on this machine, so the policy's logic is checked with cel-python (a CEL interpreter,
not the API server's cel-go: it does not type-check against the pod schema or estimate costs). Not part of the
suite, to keep cel-python and its binary dependencies out of requirements-dev.txt:

    python3 -m venv /tmp/cel && /tmp/cel/bin/pip install cel-python==0.5.0 pyyaml
    /tmp/cel/bin/python scripts/check-admission-cel.py

Prints each case with the policy's verdict and exits non-zero when one differs from the expected one.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import celpy
import yaml

POLICY = Path(__file__).resolve().parent.parent / "k8s" / "admission" / "tier-node-pod-patch.yaml"
COST = "controller.kubernetes.io/pod-deletion-cost"
USER = "system:serviceaccount:percolate:tier-node"


def pod(name: str = "tier-b-1", **meta: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "namespace": "percolate",
        "labels": {"app.kubernetes.io/name": "tier-node", "percolate.io/tier": "b"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "tier-b-7d9f", "uid": "u1"}],
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-07T06:00:00Z"},
    }
    base.update(meta)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": base, "spec": {"containers": [{"image": "percolate:1"}]}}


def changed(old: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    target = new
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return new


def with_cost(obj: dict[str, Any], value: str) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["metadata"].setdefault("annotations", {})[COST] = value
    return new


def cases() -> list[tuple[str, str, dict[str, Any], dict[str, Any], bool, bool]]:
    """(what, username, old, new, token's pod is the patched one, allowed)."""
    old = pod()
    bare = pod(annotations=None)
    del bare["metadata"]["annotations"]
    other_image = copy.deepcopy(with_cost(old, "3"))
    other_image["spec"]["containers"][0]["image"] = "evil:1"
    return [
        ("set the cost on its own pod", USER, old, with_cost(old, "3"), True, True),
        ("change the cost", USER, with_cost(old, "3"), with_cost(old, "4"), True, True),
        ("first annotation on a pod without any", USER, bare, with_cost(bare, "1"), True, True),
        ("remove the cost", USER, with_cost(old, "3"), old, True, True),
        ("another pod's cost", USER, old, with_cost(old, "3"), False, False),
        ("change the image too", USER, old, other_image, True, False),
        (
            "change a label",
            USER,
            old,
            changed(with_cost(old, "3"), ["metadata", "labels", "percolate.io/tier"], "a"),
            True,
            False,
        ),
        ("drop the owner", USER, old, changed(with_cost(old, "3"), ["metadata", "ownerReferences"], None), True, False),
        ("add a finalizer", USER, old, changed(old, ["metadata", "finalizers"], ["x/y"]), True, False),
        ("add another annotation", USER, old, changed(old, ["metadata", "annotations", "a"], "b"), True, False),
        (
            "change another annotation",
            USER,
            old,
            changed(old, ["metadata", "annotations", "kubectl.kubernetes.io/restartedAt"], "now"),
            True,
            False,
        ),
        ("drop another annotation", USER, old, changed(old, ["metadata", "annotations"], {COST: "1"}), True, False),
    ]


def main() -> int:
    docs = [d for d in yaml.safe_load_all(POLICY.read_text()) if d]
    policy = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")["spec"]
    env = celpy.Environment()

    def run(expression: str, activation: dict[str, Any]) -> Any:
        return env.program(env.compile(expression)).evaluate(activation)

    (condition,) = policy["matchConditions"]
    failures = 0
    for what, user, old, new, own, allowed in cases():
        extra = {"authentication.kubernetes.io/pod-name": [new["metadata"]["name"] if own else "tier-b-2"]}
        request = {"userInfo": {"username": user, "extra": extra}, "operation": "UPDATE"}
        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(new),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel(request),
        }
        assert bool(run(condition["expression"], activation)), what
        variables = {v["name"]: run(v["expression"], activation) for v in policy["variables"]}
        activation["variables"] = celpy.celtypes.MapType(
            {celpy.celtypes.StringType(k): v for k, v in variables.items()}
        )
        verdicts = [bool(run(v["expression"], activation)) for v in policy["validations"]]
        ok = all(verdicts) == allowed
        failures += not ok
        print(f"{'ok ' if ok else 'BAD'} {what}: {'allowed' if all(verdicts) else 'denied'} {verdicts}")
    other = {"request": celpy.json_to_cel({"userInfo": {"username": "system:serviceaccount:percolate:gateway"}})}
    assert not bool(run(condition["expression"], other)), "the policy must match the tier node only"
    print(f"{len(cases()) - failures} of {len(cases())} as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
