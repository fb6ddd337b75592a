"""Which pod of the new tier a tier move warms the tenant on: the one the gateway will route the tenant's next request
to, by the gateway's own rule (rendezvous hashing over the tier's pods, ``gateway.pods.hashing``) over the same pod list
(``tenants.pods.tier_pods``: GATEWAY_PODS_<tier>, or the tier's headless Service GATEWAY_DNS_<tier> in Kubernetes).
"""

from __future__ import annotations

import uuid

from gateway.pods.hashing import ranked_pods
from tenants.pods import Pod, tier_pods


def ranked(tier: str, tenant_id: uuid.UUID | str) -> list[Pod]:
    """The tier's pods in the gateway's order of preference for this tenant."""
    by_public = {pod.public: pod for pod in tier_pods(tier)}
    return [by_public[name] for name in ranked_pods(str(tenant_id), by_public)]
