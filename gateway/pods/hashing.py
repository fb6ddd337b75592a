"""Tenant → pod by rendezvous (highest random weight) hashing, with temporary ejection of failing pods.

Each pod scores every tenant with a keyed hash; the tenant goes to the highest-scoring pod that is not ejected. When a
pod joins or leaves, only the tenants whose top choice changes move: about 1/n of them, and no others.
"""

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


def _score(pod: str, tenant_id: str) -> int:
    digest = hashlib.blake2b(f"{pod}\x00{tenant_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranked_pods(tenant_id: str, pods: Iterable[str]) -> list[str]:
    """Every pod, best choice first, for this tenant."""
    return sorted(pods, key=lambda pod: _score(pod, tenant_id), reverse=True)


@dataclass
class PodSet:
    """The current pods of one tier and the ones ejected until a deadline after failing to connect."""

    pods: Sequence[str] = ()
    eject_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _ejected_until: dict[str, float] = field(default_factory=dict)
    _rankings: dict[str, tuple[tuple[str, ...], list[str]]] = field(default_factory=dict)
    max_rankings: int = 100_000

    def ranking(self, tenant_id: str) -> list[str]:
        """ranked_pods for this tenant, remembered until the pod list changes (one hash per pod otherwise)."""
        pods = self.pods if isinstance(self.pods, tuple) else tuple(self.pods)
        cached = self._rankings.get(tenant_id)
        if cached is not None and cached[0] == pods:
            return cached[1]
        if len(self._rankings) >= self.max_rankings:
            self._rankings.clear()
        ranking = ranked_pods(tenant_id, pods)
        self._rankings[tenant_id] = (pods, ranking)
        return ranking

    def choose(self, tenant_id: str) -> tuple[str | None, int]:
        """(pod, rank): the best pod not ejected and its rank in the tenant's preference (0 = first choice)."""
        ranking = self.ranking(tenant_id)
        if not self._ejected_until:
            return (ranking[0], 0) if ranking else (None, 0)
        now = self.clock()
        for rank, pod in enumerate(ranking):
            if self._ejected_until.get(pod, 0.0) <= now:
                return pod, rank
        return (ranking[0], 0) if ranking else (None, 0)  # everything ejected: try the first choice anyway

    def eject(self, pod: str) -> None:
        self._ejected_until[pod] = self.clock() + self.eject_seconds

    def ejected(self) -> list[str]:
        now = self.clock()
        return [pod for pod, until in self._ejected_until.items() if until > now]
