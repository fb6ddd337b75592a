"""Network isolation, the project's own rule: default deny; only the gateway and the workers reach tier pods (each
listener only its own callers) and the monitoring namespace scrapes them; only platform pods reach PostgreSQL/Redis.

No tool reads NetworkPolicies against the tier-pod contract, so this stays Python (checkov's CKV2_K8S_6 only asks that
a policy exists).
"""

from __future__ import annotations

from k8s.manifests import Obj, object_id, pod_labels, pod_spec, selector_matches

DATASTORE_PORTS = {5432, 6379}


def _rule_ports(rule: Obj) -> set[int] | None:
    """The numeric ports a rule opens; None means all ports."""
    ports = rule.get("ports")
    if not ports:
        return None
    out: set[int] = set()
    for p in ports:
        if "port" not in p:
            return None
        if isinstance(p["port"], int):
            end = p.get("endPort", p["port"])
            out.update(range(p["port"], end + 1))
    return out


TIER_CALLERS = frozenset({"gateway", "worker"})
# A tier pod listens twice (tiernode): its public port takes only the gateway's forwarded chat, its internal port
# (/internal/...) the gateway's own calls and the workers'. Nothing else may reach either.
TIER_PUBLIC_PORT, TIER_INTERNAL_PORT = 8000, 8001
TIER_PORT_CALLERS = {TIER_PUBLIC_PORT: frozenset({"gateway"}), TIER_INTERNAL_PORT: TIER_CALLERS}


def check_network_isolation(objs: list[Obj]) -> list[str]:
    """Default deny; only the gateway and the workers (the tier-pod contract's "gateway/platform": proxied traffic,
    and the archive task's evictions) and the monitoring namespace's scrapers reach tier pods; only platform pods
    (percolate.io/platform=true) may open connections to PostgreSQL/Redis ports; datastore pods accept only them."""
    problems: list[str] = []
    policies = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    namespace = "percolate"
    if not any(
        p["spec"].get("podSelector") in ({}, None)
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append(f"NetworkPolicy/{namespace}/*: no default-deny policy (empty podSelector, Ingress+Egress)")
    pods = [(o, pod_labels(o)) for o in objs if pod_spec(o) is not None]

    def is_caller_selector(sel: Obj, callers: frozenset[str]) -> bool:
        matched = [o for o, labels in pods if selector_matches(sel, labels)]
        return bool(matched) and all(pod_labels(o).get("app.kubernetes.io/name") in callers for o in matched)

    for pol in policies:
        pid = object_id(pol)
        selected = [(o, labels) for o, labels in pods if selector_matches(pol["spec"].get("podSelector"), labels)]
        tier_pods = [o for o, labels in selected if labels.get("app.kubernetes.io/name") == "tier-node"]
        datastore_pods = [o for o, labels in selected if labels.get("percolate.io/datastore") == "true"]
        for rule in pol["spec"].get("ingress") or []:
            peers = rule.get("from")
            rule_ports = _rule_ports(rule)
            for target, allowed in ((tier_pods, "gateway"), (datastore_pods, "platform")):
                if not target:
                    continue
                names = ", ".join(object_id(o) for o in target)
                if not peers:
                    problems.append(f"{pid}: opens {names} to every source; only {allowed} pods may connect")
                    continue
                for peer in peers:
                    if "ipBlock" in peer:
                        problems.append(f"{pid}: opens {names} to ipBlock {peer['ipBlock']}")
                        continue
                    ns_sel = peer.get("namespaceSelector")
                    if ns_sel is not None:
                        if (ns_sel.get("matchLabels") or {}).get("kubernetes.io/metadata.name") == "monitoring" and (
                            "podSelector" not in peer
                        ):
                            if allowed == "gateway" and (rule_ports is None or TIER_INTERNAL_PORT in rule_ports):
                                problems.append(f"{pid}: opens the internal API port of {names} to monitoring")
                            continue  # Prometheus scraping metrics
                        problems.append(f"{pid}: opens {names} to other namespaces ({ns_sel})")
                        continue
                    sel = peer.get("podSelector") or {}
                    for port, callers in TIER_PORT_CALLERS.items():
                        opened = rule_ports is None or port in rule_ports
                        if allowed == "gateway" and opened and not is_caller_selector(sel, callers):
                            who = " and ".join(sorted(callers))
                            problems.append(f"{pid}: lets pods other than {who} reach port {port} of {names} ({sel})")
                    if allowed == "platform" and (sel.get("matchLabels") or {}).get("percolate.io/platform") != "true":
                        problems.append(f"{pid}: lets non-platform pods reach {names} ({sel})")
        for rule in pol["spec"].get("egress") or []:
            ports = _rule_ports(rule)
            if ports is not None and not (ports & DATASTORE_PORTS):
                continue
            offenders = [o for o, labels in selected if labels.get("percolate.io/platform") != "true"]
            for o in offenders:
                problems.append(
                    f"{pid}: lets {object_id(o)} (not a platform pod) open connections to the database/Redis ports"
                )
    return problems
