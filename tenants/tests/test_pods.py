"""The platform's client to the tier pods, against a real tier node process (``python -m tiernode``) and, for a pod
that never answers, a real listening socket that accepts connections and says nothing."""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenants import pods
from tiernode.store import TenantStore
from tiernode.tests.conftest import TOKEN, node_env
from tiernode.tests.test_process import Node, _free_port


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path]]:
    tmp = tmp_path_factory.mktemp("pod")
    node = Node(node_env(tmp), _free_port())
    yield node, tmp / "tenant-data"
    node.stop(signal.SIGTERM)


@pytest.fixture
def pod(node: tuple[Node, Path], settings: Any) -> str:
    settings.PLATFORM_SERVICE_TOKEN = TOKEN  # the node's service credential
    return f"127.0.0.1:{node[0].port}"


def test_warm_then_evict_with_the_service_credential(pod: str) -> None:
    tenant = uuid.uuid4()
    warmed = pods.warm(pod, tenant, generation=3, timeout=10)
    assert warmed.status == 200
    assert warmed.doc == {**warmed.doc, "tenant_id": str(tenant), "state": "hot", "generation": 3, "source": "cold"}
    evicted = pods.evict(pod, tenant, generation=3, timeout=10)
    assert evicted.doc == {**evicted.doc, "state": "cold", "previous_state": "hot", "generation": 3}


def test_a_stale_generation_is_refused_with_the_pods_reason(pod: str) -> None:
    tenant = uuid.uuid4()
    pods.warm(pod, tenant, generation=5, timeout=10)
    with pytest.raises(pods.PodCallFailed) as caught:
        pods.evict(pod, tenant, generation=4, timeout=10)
    failed = caught.value
    assert failed.refused and not failed.unreachable
    assert (failed.status, failed.pod_code) == (409, "stale_generation")
    assert failed.message.startswith(f"pod {pod} did not evict tenant {tenant} (generation 4): HTTP 409 (stale_gen")
    pods.evict(pod, tenant, generation=5, timeout=10)


def test_a_wrong_credential_is_refused(pod: str, settings: Any) -> None:
    settings.PLATFORM_SERVICE_TOKEN = "another-token-0123456789"
    with pytest.raises(pods.PodCallFailed) as caught:
        pods.warm(pod, uuid.uuid4(), generation=1, timeout=10)
    assert caught.value.refused and (caught.value.status, caught.value.pod_code) == (401, "unauthorized")


def test_a_pod_that_cannot_load_the_tenant_now_is_unreachable_not_refused(pod: str, node: tuple[Node, Path]) -> None:
    """A 5xx (here: another process still holds the tenant's RocksDB) may succeed later or on another pod."""
    tenant = uuid.uuid4()
    held = TenantStore(node[1], tenant)
    try:
        with pytest.raises(pods.PodCallFailed) as caught:
            pods.warm(pod, tenant, generation=1, timeout=10)
    finally:
        held.close()
    assert caught.value.unreachable and (caught.value.status, caught.value.pod_code) == (503, "load_failed")
    assert pods.warm(pod, tenant, generation=1, timeout=10).doc["state"] == "hot"


def test_nothing_listening_is_unreachable() -> None:
    dead = f"127.0.0.1:{_free_port()}"
    with pytest.raises(pods.PodCallFailed) as caught:
        pods.evict(dead, uuid.uuid4(), generation=1, timeout=5)
    assert caught.value.unreachable and caught.value.status is None
    assert "Connection refused" in caught.value.message


def test_a_pod_that_never_answers_is_unreachable_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(pods.PodCallFailed) as caught:
            pods.warm(address, uuid.uuid4(), generation=1, timeout=0.3)
        assert time.monotonic() - started < 2
    assert caught.value.unreachable and caught.value.message.endswith("no answer within 0.3s")


@pytest.mark.parametrize("address", ["", "tier-b-7", "10.0.0.1:80/x", "user@10.0.0.1:80", "h:80?q", "[::1]x:80"])
def test_what_is_not_a_pod_address_is_never_called(address: str) -> None:
    with pytest.raises(pods.NotAPodAddress) as caught:
        pods.evict(address, uuid.uuid4(), generation=1, timeout=1)
    assert "is not a pod address (host:port)" in caught.value.message


def test_the_tiers_pods_from_the_static_list_or_the_headless_service(settings: Any) -> None:
    settings.GATEWAY_TIER_DNS = {"A": "", "B": "localhost", "C": ""}
    settings.GATEWAY_TIER_PODS = {"A": ["10.0.0.1:8000/8001", "10.0.0.2:8000"], "B": [], "C": []}
    settings.GATEWAY_POD_PORT, settings.GATEWAY_POD_INTERNAL_PORT = 8000, 9001
    assert pods.tier_pods("A") == [
        pods.Pod("10.0.0.1:8000", "10.0.0.1:8001"),
        pods.Pod("10.0.0.2:8000", "10.0.0.2:9001"),
    ]
    assert pods.Pod("127.0.0.1:8000", "127.0.0.1:9001") in pods.tier_pods("B")
    assert pods.tier_pods("C") == []


def test_the_metrics_page_needs_no_credential_and_a_dead_pod_is_unreachable(pod: str, settings: Any) -> None:
    settings.PLATFORM_SERVICE_TOKEN = "another-token-0123456789"  # not sent: /metrics is open on both listeners
    assert "percolate_hot_tenants_count " in pods.metrics(pod, timeout=10)
    with pytest.raises(pods.PodCallFailed) as caught:
        pods.metrics(f"127.0.0.1:{_free_port()}", timeout=5)
    assert caught.value.unreachable and caught.value.message.startswith("pod 127.0.0.1:")
