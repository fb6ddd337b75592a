"""Tier-move fixtures: real tier-node processes per tier on the test's data roots, the settings that point the
platform at them (the gateway's pod lists), a tenant made hot on its tier's pod with memory written, and reads of
the tenant's RocksDB."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archival.tests.test_evict import TierNode
from core.audit import Actor
from moves import progress
from tenants.models import State, Tenant, TenantState
from tenants.services import tenant_state_transition
from tiernode.store import TenantStore

ACTOR = Actor.system("test:moves")


class SimulatedCrash(BaseException):
    """Raised from the step hook: like a process dying, no `except Exception` handler sees it."""


class Nodes:
    def __init__(self, tmp_path: Path, settings, roots: dict[str, Path]) -> None:
        self.tmp_path, self.settings, self.roots = tmp_path, settings, roots
        self.by_tier: dict[str, TierNode] = {}

    def start(self, tier: str) -> TierNode:
        node = TierNode(self.roots[tier], self.tmp_path / "node-objects", tier=tier)
        self.by_tier[tier] = node
        pods = dict(self.settings.GATEWAY_TIER_PODS)
        pods[tier] = [f"127.0.0.1:{node.public_port}/{node.port}"]
        self.settings.GATEWAY_TIER_PODS = pods
        return node

    def none_for(self, tier: str) -> None:
        self.settings.GATEWAY_TIER_PODS = {**self.settings.GATEWAY_TIER_PODS, tier: []}

    def stop_all(self) -> None:
        for node in self.by_tier.values():
            node.stop()


def _nodes(tmp_path: Path, settings, roots: dict[str, Path]) -> Iterator[Nodes]:
    settings.GATEWAY_TIER_DNS = {"A": "", "B": "", "C": ""}
    settings.GATEWAY_TIER_PODS = {"A": [], "B": [], "C": []}
    settings.MOVE_EVICT_TIMEOUT_SECONDS = 5.0
    settings.MOVE_WARM_TIMEOUT_SECONDS = 10.0
    nodes = Nodes(tmp_path, settings, roots)
    try:
        yield nodes
    finally:
        nodes.stop_all()


@pytest.fixture
def data_root(settings, tmp_path: Path) -> Path:
    root = tmp_path / "tenant-data"
    root.mkdir()
    settings.TENANT_DATA_ROOT = root
    return root


@pytest.fixture
def nodes(tmp_path: Path, settings, data_root: Path) -> Iterator[Nodes]:
    """One data root shared by the tiers (the local and manifest default): nothing is copied."""
    settings.TIER_DATA_ROOTS = {"A": "", "B": "", "C": ""}
    yield from _nodes(tmp_path, settings, {"A": data_root, "B": data_root, "C": data_root})


@pytest.fixture
def split_nodes(tmp_path: Path, settings, data_root: Path) -> Iterator[Nodes]:
    """A data root per tier: a move copies the tenant's RocksDB."""
    roots = {tier: tmp_path / f"root-{tier}" for tier in "ABC"}
    for root in roots.values():
        root.mkdir()
    settings.TIER_DATA_ROOTS = {tier: str(root) for tier, root in roots.items()}
    yield from _nodes(tmp_path, settings, roots)


def make_hot(node: TierNode, tenant: Tenant, messages: int = 5) -> TenantState:
    """Warm the tenant on the node at its generation, chat `messages` times, record it hot on that pod."""
    st = TenantState.objects.get(tenant=tenant)
    status, doc = node.call("POST", f"/internal/warm/{tenant.id}", {"generation": st.generation})
    assert status == 200 and doc["state"] == "hot", doc
    for i in range(messages):
        node.chat(tenant.id, st.generation, f"My name is Ada. Note {i} matters.")
    return tenant_state_transition(
        tenant_id=tenant.id, to_state=State.HOT, generation=st.generation, actor=ACTOR, pod_id=node.pod_id
    )


def stored_messages(root: Path, tenant: Tenant) -> int:
    """The tenant's message count read straight from its RocksDB (the pods must have let go of it)."""
    store = TenantStore(root, tenant.id)
    try:
        return store.message_count
    finally:
        store.close()


@pytest.fixture
def step_hook() -> Iterator[Callable[[Callable[[str, object], None]], None]]:
    def install(hook: Callable[[str, object], None]) -> None:
        progress.STEP_HOOK = hook

    yield install
    progress.STEP_HOOK = None
