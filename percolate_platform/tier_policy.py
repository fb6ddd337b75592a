"""The tier policy as settings load it: core.tier_policy's defaults with TIER_POLICY_JSON's overrides."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from core.tier_policy import TierPolicy, TierPolicyError, with_overrides


def load_tier_policy(overrides: dict[str, dict[str, Any]]) -> dict[str, TierPolicy]:
    """Defaults with per-tier overrides, e.g. {"C": {"max_hot_per_pod": 30}}; a bad one is ImproperlyConfigured."""
    try:
        return with_overrides(overrides)
    except TierPolicyError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
