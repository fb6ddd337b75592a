"""Keeps this pod's ``controller.kubernetes.io/pod-deletion-cost`` annotation at its hot-tenant count.

On a scale-down the ReplicaSet controller removes the pods with the lowest deletion cost first, so a tier sheds its
emptiest pods and evicts the fewest hot tenants (#19 defect 6, docs/decisions.md). The node patches its own pod
through the Kubernetes API with its ServiceAccount's token (RBAC and admission policy: k8s/base/rbac-tier-node.yaml,
k8s/admission/).

The writer samples the count (a callable: it reads the manager, never changes it) once every
``PERCOLATE_DELETION_COST_SECONDS`` and patches only when the value differs from the last one written, so a pod
sends at most one patch per interval and none while its count holds still: the API server and every pod watcher
see each change once. The patch runs on a thread of its own with a timeout, and every failure is logged and
counted (``percolate_pod_deletion_cost_patches_total{result="error"}``): tenant traffic never waits on it. Outside
a cluster (no ``KUBERNETES_SERVICE_HOST``, ``POD_NAME`` or token) there is no writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tiernode.config import NodeConfig

log = logging.getLogger("tiernode.deletion_cost")

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PATCH_TIMEOUT_SECONDS = 5.0
INT32_MAX = 2**31 - 1  # the annotation is an int32


class PatchFailed(Exception):
    pass


@dataclass(frozen=True)
class PodTarget:
    """This pod in the API, and the credentials to reach it (re-read per call: the kubelet rotates the token)."""

    api_url: str
    namespace: str
    name: str
    token_path: Path
    ca_path: Path

    @classmethod
    def in_cluster(cls, cfg: NodeConfig, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> PodTarget | None:
        token, ca = sa_dir / "token", sa_dir / "ca.crt"
        namespace = cfg.pod_namespace or _read(sa_dir / "namespace")
        if not (cfg.kube_api_url and cfg.pod_name and namespace and token.is_file() and ca.is_file()):
            return None
        return cls(cfg.kube_api_url, namespace, cfg.pod_name, token, ca)

    @property
    def url(self) -> str:
        ns, name = urllib.parse.quote(self.namespace, safe=""), urllib.parse.quote(self.name, safe="")
        return f"{self.api_url}/api/v1/namespaces/{ns}/pods/{name}"

    def patch_deletion_cost(self, cost: int) -> None:
        """A JSON merge patch of the one annotation (a string, as annotations are). Raises PatchFailed."""
        body = json.dumps({"metadata": {"annotations": {ANNOTATION: str(cost)}}}).encode()
        req = urllib.request.Request(self.url, data=body, method="PATCH")  # noqa: S310 - https URL built above
        req.add_header("Authorization", f"Bearer {self.token_path.read_text().strip()}")
        req.add_header("Content-Type", "application/merge-patch+json")
        req.add_header("Accept", "application/json")
        context = ssl.create_default_context(cafile=str(self.ca_path))
        try:
            with urllib.request.urlopen(req, timeout=PATCH_TIMEOUT_SECONDS, context=context) as resp:  # noqa: S310
                resp.read()
        except urllib.error.HTTPError as exc:
            raise PatchFailed(f"PATCH {self.url}: HTTP {exc.code} {_status_message(exc.read())}") from exc
        except (OSError, ValueError) as exc:
            raise PatchFailed(f"PATCH {self.url}: {exc}") from exc


class DeletionCostWriter:
    """Samples ``count`` every ``interval`` seconds and patches the pod when the value changed."""

    def __init__(
        self,
        target: PodTarget,
        count: Callable[[], int],
        *,
        interval: float,
        on_result: Callable[[str], None] = lambda result: None,
    ) -> None:
        self.target = target
        self.count = count
        self.interval = interval
        self.on_result = on_result
        self.written: int | None = None  # unknown at start: a restarted container may have left an old value
        self.patches = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def in_cluster(
        cls,
        cfg: NodeConfig,
        count: Callable[[], int],
        *,
        on_result: Callable[[str], None] = lambda result: None,
        sa_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> DeletionCostWriter | None:
        target = PodTarget.in_cluster(cfg, sa_dir)
        if target is None or cfg.deletion_cost_interval_seconds <= 0:
            return None
        return cls(target, count, interval=cfg.deletion_cost_interval_seconds, on_result=on_result)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deletion-cost")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # Pods started together (a rollout, a scale-up) would otherwise patch in step.
        await asyncio.sleep(random.uniform(0, min(self.interval, 5.0)))  # noqa: S311 - jitter, not security
        while True:
            await self.sync()
            await asyncio.sleep(self.interval)

    async def sync(self) -> None:
        """One sample: patch if the count moved since the last value written. Never raises."""
        try:
            cost = max(0, min(int(self.count()), INT32_MAX))
            if cost == self.written:
                return
            await _in_daemon_thread(self.target.patch_deletion_cost, cost)
        except Exception as exc:  # anything at all: the pod's traffic must not notice
            self.on_result("error")
            if not self._failing:
                log.warning("pod-deletion-cost not updated (retrying every %s s): %s", self.interval, exc)
            self._failing = True
            return
        self.written = cost
        self.patches += 1
        self.on_result("ok")
        if self._failing:
            log.info("pod-deletion-cost updated again (%d)", cost)
        self._failing = False


async def _in_daemon_thread(fn: Callable[[int], None], arg: int) -> None:
    """Run ``fn(arg)`` on a daemon thread: a patch still hanging at shutdown must not hold the process's exit (an
    executor's threads are joined at exit, a daemon thread is not)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():  # the writer was stopped meanwhile
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            fn(arg)
        except BaseException as exc:  # handed to the awaiting task, which counts it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="deletion-cost", daemon=True).start()
    await done


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _status_message(raw: bytes) -> str:
    """The message of a Kubernetes Status answer, or the raw start of any other."""
    try:
        return str(json.loads(raw).get("message", ""))[:300]
    except (ValueError, AttributeError):
        return raw[:200].decode(errors="replace")
