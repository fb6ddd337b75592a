"""The tier policy: one source of truth for tier limits, idle timeouts and pod counts.

Settings, the tier node, the Kubernetes manifests' checks and the HPA simulation all read it from here. Pure
Python: the tier node imports it without Django (settings turn a bad override into ImproperlyConfigured in
percolate_platform.tier_policy).
"""

from dataclasses import dataclass, replace
from typing import Any

TIERS = ("A", "B", "C")
TIER_NAMES = {"A": "premium", "B": "standard", "C": "free"}


@dataclass(frozen=True)
class TierPolicy:
    tier: str
    max_hot_per_pod: int
    hpa_target_hot_per_pod: int
    hot_to_warm_seconds: int | None  # None: never (kept warm)
    warm_to_cold_seconds: int | None
    min_pods: int
    max_pods: int
    requests_per_minute: int
    max_concurrent_streams: int
    models: tuple[str, ...] = ("percolate-reference",)  # what GET /v1/models lists; the node serves the model

    @property
    def keep_warm(self) -> bool:
        return self.hot_to_warm_seconds is None


DEFAULT_TIER_POLICY: dict[str, TierPolicy] = {
    "A": TierPolicy("A", 8, 6, None, None, 2, 50, 600, 8),
    "B": TierPolicy("B", 15, 12, 5 * 60, 60 * 60, 2, 100, 120, 4),
    "C": TierPolicy("C", 25, 20, 60, 10 * 60, 2, 200, 30, 2),
}


class TierPolicyError(ValueError):
    """An override names an unknown tier or field."""


def with_overrides(overrides: dict[str, dict[str, Any]]) -> dict[str, TierPolicy]:
    """Defaults with per-tier overrides, e.g. {"C": {"max_hot_per_pod": 30}} from TIER_POLICY_JSON."""
    policy = dict(DEFAULT_TIER_POLICY)
    for tier, changes in overrides.items():
        if tier not in TIERS:
            raise TierPolicyError(f"TIER_POLICY_JSON names unknown tier {tier!r}")
        try:
            policy[tier] = replace(policy[tier], **changes)
        except TypeError as exc:
            raise TierPolicyError(f"TIER_POLICY_JSON for tier {tier}: {exc}") from exc
    return policy
