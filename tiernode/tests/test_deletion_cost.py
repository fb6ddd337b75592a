"""The pod-deletion-cost writer against an HTTPS stand-in of the Kubernetes API (fake_kube.py): the patch lands with
the pod's hot count, at most once per interval and only on a change, nowhere outside a cluster, and a refusing or
hanging API server never touches tenant traffic."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tiernode.app import NodeApp
from tiernode.config import NodeConfig
from tiernode.deletion_cost import ANNOTATION, DeletionCostWriter, PatchFailed, PodTarget
from tiernode.tests.conftest import FakeClock, eventually, node_env, running, sample
from tiernode.tests.fake_kube import FakeKubeApi, make_tls

NS, POD, TOKEN = "percolate", "tier-b-7d9f-abcde", "bound-token-of-tier-b-7d9f-abcde"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(tls_dir=tmp_path / "kube-tls", tokens={TOKEN: (NS, POD)})
    api.add_pod(NS, POD, {"kubectl.kubernetes.io/restartedAt": "2026-12-07T06:00:00Z"})
    api.add_pod(NS, "tier-b-other")
    api.start()
    yield api
    api.stop()


@pytest.fixture
def sa_dir(tmp_path: Path, kube: FakeKubeApi) -> Path:
    """The projected service-account volume as the kubelet lays it out."""
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(TOKEN)
    shutil.copy(kube.tls_dir / "ca.crt", directory / "ca.crt")
    (directory / "namespace").write_text(NS)
    return directory


def kube_env(kube: FakeKubeApi, interval: str = "0.05") -> dict[str, str]:
    assert kube.server is not None
    return {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(kube.server.server_address[1]),
        "POD_NAME": POD,
        "POD_NAMESPACE": NS,
        "PERCOLATE_DELETION_COST_SECONDS": interval,
    }


@pytest.fixture
def make_pod(tmp_path: Path, clock: FakeClock, kube: FakeKubeApi, sa_dir: Path) -> Callable[..., NodeApp]:
    def make(**overrides: str) -> NodeApp:
        env = node_env(tmp_path, **{**kube_env(kube), **overrides})
        return NodeApp(NodeConfig.from_env(env), clock=clock, run_sweeper=False, service_account_dir=sa_dir)

    return make


def _target(kube: FakeKubeApi, sa_dir: Path, **overrides: str) -> PodTarget:
    cfg = NodeConfig.from_env(node_env(sa_dir.parent, **{**kube_env(kube), **overrides}))
    target = PodTarget.in_cluster(cfg, sa_dir)
    assert target is not None
    return target


async def test_the_pod_is_patched_with_its_hot_count(make_pod, kube) -> None:
    app = make_pod()
    async with running(app) as client:
        tenants = [uuid.uuid4() for _ in range(3)]
        for tid in tenants:
            assert (await client.warm(tid)).status == 200
        await eventually(lambda: kube.cost(NS, POD) == "3")
        await client.evict(tenants[0])
        await eventually(lambda: kube.cost(NS, POD) == "2")
    last = kube.patches()[-1]
    assert last["method"] == "PATCH" and last["path"] == f"/api/v1/namespaces/{NS}/pods/{POD}"
    assert last["headers"]["content-type"] == "application/merge-patch+json"
    assert last["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(last["body"]) == {"metadata": {"annotations": {ANNOTATION: "2"}}}
    pod = kube.pods[(NS, POD)]["metadata"]
    assert pod["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-12-07T06:00:00Z"  # a merge, not a put
    assert sample(app, "percolate_pod_deletion_cost_patches_total", result="ok") == len(kube.patches())
    assert sample(app, "percolate_pod_deletion_cost_patches_total", result="error") == 0


async def test_patches_only_when_the_count_changed_and_at_most_once_an_interval(kube, sa_dir) -> None:
    count = [0]
    writer = DeletionCostWriter(_target(kube, sa_dir), lambda: count[0], interval=0.25)
    await writer.sync()
    await writer.sync()  # unchanged: no second patch
    assert [json.loads(r["body"]) for r in kube.patches()] == [{"metadata": {"annotations": {ANNOTATION: "0"}}}]
    writer.start()
    started = time.monotonic()
    while time.monotonic() - started < 1.0:  # a busy pod: its count moves every 10 ms for a second
        count[0] = (count[0] + 1) % 9
        await asyncio.sleep(0.01)
    count[0] = 7
    await eventually(lambda: kube.cost(NS, POD) == "7")
    during = len(kube.patches())
    assert during <= 1 + 1.3 / 0.25 + 1, during  # one a quarter second, not one a change (about 100)
    await asyncio.sleep(0.8)  # the count holds still: nothing more is sent
    assert len(kube.patches()) == during
    await writer.stop()


async def test_no_writer_outside_a_cluster(tmp_path, kube, sa_dir) -> None:
    def writer(env: dict[str, str], directory: Path) -> DeletionCostWriter | None:
        cfg = NodeConfig.from_env(node_env(tmp_path, **env))
        return DeletionCostWriter.in_cluster(cfg, lambda: 0, sa_dir=directory)

    assert writer({}, sa_dir) is None  # no KUBERNETES_SERVICE_HOST: not in a cluster
    assert writer({**kube_env(kube), "POD_NAME": ""}, sa_dir) is None  # no downward API
    assert writer(kube_env(kube), tmp_path / "no-token-mounted") is None  # automountServiceAccountToken: false
    assert writer({**kube_env(kube), "PERCOLATE_DELETION_COST_SECONDS": "0"}, sa_dir) is None  # turned off
    found = writer({**kube_env(kube), "POD_NAMESPACE": ""}, sa_dir)  # the namespace file serves as well
    assert found is not None and found.target.namespace == NS
    node = NodeApp(NodeConfig.from_env(node_env(tmp_path)), run_sweeper=False, service_account_dir=sa_dir)
    assert node.deletion_cost is None
    async with running(node) as client:
        assert (await client.chat(uuid.uuid4(), "hello", generation=1)).status == 200
    assert kube.requests == []


@pytest.mark.parametrize("trouble", ["refused", "hangs"])
async def test_a_failing_api_server_never_touches_tenant_traffic(make_pod, kube, trouble) -> None:
    if trouble == "refused":
        kube.refuse = 403  # e.g. the RoleBinding is missing
    else:
        kube.delay = 3.0  # longer than any chat below
    app = make_pod()
    async with running(app) as client:
        await eventually(lambda: kube.received >= 1)  # the first patch is refused, or hanging
        for n in range(5):
            started = time.perf_counter()
            resp = await client.chat(uuid.uuid4(), f"hello {n}", generation=1)
            assert resp.status == 200 and "choices" in resp.json()
            assert time.perf_counter() - started < 1.0
        if trouble == "refused":
            await eventually(lambda: sample(app, "percolate_pod_deletion_cost_patches_total", result="error") >= 2)
            kube.refuse = 0  # the binding is back: the writer catches up on its own
            await eventually(lambda: kube.cost(NS, POD) == "5")
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 2.0  # shutdown does not wait for a hanging patch
    in_flight = [t for t in threading.enumerate() if t.name == "deletion-cost"]
    assert all(t.daemon for t in in_flight)  # nor does the process's exit
    if trouble == "hangs":
        assert in_flight


async def test_what_the_api_refuses_is_counted_not_raised(kube, sa_dir, tmp_path) -> None:
    """Another pod, another namespace, an unknown token, a CA that did not sign the server: each one a PatchFailed,
    and the writer turns each into an error count."""
    other_ca = make_tls(tmp_path / "other-ca")[0]
    cases = [
        _target(kube, sa_dir, POD_NAME="tier-b-other"),
        _target(kube, sa_dir, POD_NAMESPACE="kube-system"),
    ]
    wrong_token = tmp_path / "wrong-token"
    wrong_token.write_text("not-a-token")
    cases.append(PodTarget(cases[0].api_url, NS, POD, wrong_token, sa_dir / "ca.crt"))
    cases.append(PodTarget(cases[0].api_url, NS, POD, sa_dir / "token", other_ca))
    for target in cases:
        with pytest.raises(PatchFailed):
            target.patch_deletion_cost(1)
        results: list[str] = []
        await DeletionCostWriter(target, lambda: 1, interval=1, on_result=results.append).sync()
        assert results == ["error"]
    assert kube.patches() == [] and kube.cost(NS, "tier-b-other") is None


async def test_a_rotated_token_is_read_again(kube, sa_dir) -> None:
    target = _target(kube, sa_dir)
    target.patch_deletion_cost(4)
    kube.tokens = {"rotated-token": (NS, POD)}
    (sa_dir / "token").write_text("rotated-token\n")
    target.patch_deletion_cost(5)
    assert kube.cost(NS, POD) == "5"
