"""Tier moves under chat traffic: `python -m bench.tiermove [--tenants 100] [--clients 4] [--tenant-mb 0]`.

Real processes (bench.tiermove_stack): the platform, one tier node per tier on one data root, the gateway, over a
PostgreSQL database `percolate_bench_tiermove` (created and migrated) and Redis. Each tenant is made hot on tier B
through the gateway, then, one tenant after another:

- **direct**: the pod work of a move alone, by direct calls to the pods' internal API: evict from the tier-B pod
  (flush, close, context blob) and warm on the tier-A pod at the same generation (timed), then back to B (untimed);
- **move**: the same tenant moved B -> A by the move service (`moves.services`, as the Celery task runs it: fence,
  evict, switch, warm on the new tier, the records and the audit row).

Meanwhile client threads chat with random tenants through the gateway, each message unique; a clean refusal is
retried as a client honouring Retry-After would. At the end every tenant is evicted and its RocksDB read: each
message answered must be stored exactly once. The last line is one JSON object: `move_p50_ms`, `move_p99_ms`,
`direct_p50_ms`, `ratio_move_vs_direct` (target <= 1.5), `move_overhead_p50_ms` (move median - direct median: the
move's own bookkeeping), `client_max_gap_ms` (the longest a chat request took),
`lost_messages`, `duplicated_messages` (both 0), and the load average.
"""

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.coldstart import fill
from bench.tiermove_stack import ROOT, Stack

DB_URL = os.environ.get("BENCH_TIERMOVE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_bench_tiermove")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-tiermove-service-token-0123"
MASTER_KEY = "11" * 32


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_database() -> None:
    name = DB_URL.rsplit("/", 1)[1]
    admin = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, check=False)
    subprocess.run([*admin, f"CREATE DATABASE {name}"], capture_output=True, check=True)
    env = {**os.environ, "DATABASE_URL": DB_URL, "PLATFORM_SERVICE_TOKEN": TOKEN, "PLATFORM_MASTER_KEY": MASTER_KEY}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


def setup_django(stack: Stack) -> None:
    os.environ.update(
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        PLATFORM_SERVICE_TOKEN=TOKEN,
        PLATFORM_MASTER_KEY=MASTER_KEY,
        TENANT_DATA_ROOT=str(stack.data_root),
        OBJECT_STORE_ROOT=str(stack.root / "objects"),
        CELERY_TASK_ALWAYS_EAGER="true",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",  # stdout ends with the JSON line only
        DJANGO_SETTINGS_MODULE="percolate_platform.settings",
        **{f"GATEWAY_PODS_{tier}": pods[0] for tier, pods in stack.pods().items()},
    )
    os.environ.pop("S3_ENDPOINT_URL", None)
    import django

    django.setup()


class ClientThreads:
    """Threads chatting with random tenants until stopped; what each message got, and its latency."""

    def __init__(self, stack: Stack, tokens: dict[uuid.UUID, str], n: int) -> None:
        self.stack, self.tokens = stack, tokens
        self.stop = threading.Event()
        self.sent: dict[str, uuid.UUID] = {}  # message text -> tenant, for the ones answered in full
        self.bad: list[str] = []
        self.refusals = 0
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, index: int) -> None:
        rnd = random.Random(index)
        tenants = list(self.tokens)
        count = 0
        while not self.stop.is_set():
            tenant = rnd.choice(tenants)
            text = f"bench-{index}-{count} note"
            count += 1
            for _attempt in range(10):
                outcome = self.stack.chat(self.tokens[tenant], text, stream=count % 2 == 0)
                with self.lock:
                    self.latencies.append(outcome.waited_ms)
                if outcome.complete:
                    with self.lock:
                        self.sent[text] = tenant
                    break
                if outcome.clean_error and not outcome.content:
                    with self.lock:
                        self.refusals += 1
                    time.sleep(0.2)
                    continue
                with self.lock:
                    self.bad.append(f"{text}: {outcome}")
                break
            time.sleep(0.01)

    def run_until(self, stop: Any) -> dict[str, Any]:
        for t in self.threads:
            t.start()
        stop.wait()
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return {"sent": self.sent, "bad": self.bad, "refusals": self.refusals, "latencies": self.latencies}


def _client_process(stack: Stack, tokens: dict[uuid.UUID, str], n: int, stop: Any, results: Any) -> None:
    results.put(ClientThreads(stack, tokens, n).run_until(stop))


class Clients:
    """The chatting clients in a process of their own, as real users are: as threads of the bench's process they took
    the GIL from the move being timed (a move's median went from ~100 ms with no clients to ~170 ms with four, on a
    quiet machine), which a Celery worker never shares with its clients."""

    def __init__(self, stack: Stack, tokens: dict[uuid.UUID, str], n: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.stop, self.results = ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=_client_process, args=(stack, tokens, n, self.stop, self.results))
        self.sent: dict[str, uuid.UUID] = {}
        self.bad: list[str] = []
        self.refusals = 0
        self.latencies: list[float] = []

    def __enter__(self) -> "Clients":
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        result = self.results.get(timeout=120)
        self.process.join(30)
        self.sent, self.bad = result["sent"], result["bad"]
        self.refusals, self.latencies = result["refusals"], result["latencies"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--tenant-mb", type=int, default=0, help="MB of messages in each tenant's store")
    parser.add_argument("--workdir", help="keep the processes' logs and data here (default: a temporary directory)")
    args = parser.parse_args()
    prepare_database()
    with contextlib.ExitStack() as scope:
        tmp = args.workdir or scope.enter_context(tempfile.TemporaryDirectory(prefix="bench-tiermove-"))
        # Room for every tenant on one pod per tier: the figure is the move against the pod work it needs, not a
        # full tier-A pod making room (its hot-set cap is 8) by evicting another tenant on each warm.
        stack = Stack(Path(tmp), DB_URL, REDIS_URL, TOKEN, MASTER_KEY).start(max_hot=10 * args.tenants)
        try:
            setup_django(stack)
            print(json.dumps(run(stack, args.tenants, args.clients, args.tenant_mb)), flush=True)
        finally:
            stack.stop()


def run(stack: Stack, n_tenants: int, n_clients: int, tenant_mb: int = 0) -> dict[str, Any]:
    from django.conf import settings

    from core.audit import Actor
    from gateway.auth.tokens import mint_platform_token
    from moves import services
    from moves.models import MoveStatus
    from tenants import pods
    from tenants.models import TenantState
    from tenants.services import tenant_assign_pod, tenant_provision
    from tiernode.store import TenantStore

    actor = Actor.system("bench:tiermove")
    ids = [
        tenant_provision(email=f"move-{i}-{uuid.uuid4().hex[:6]}@example.com", tier="B", actor=actor).id
        for i in range(n_tenants)
    ]
    for tenant in ids if tenant_mb else ():  # before any pod opens the store: the pods' work grows with the data
        fill(stack.data_root, tenant, tenant_mb)
    tokens = {t: mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=t) for t in ids}
    for tenant in ids:  # hot on tier B, through the gateway, with one message each
        assert stack.chat(tokens[tenant], f"hello {tenant}", stream=False).complete
    _settle(ids)
    log(f"{n_tenants} tenants hot on tier B; {n_clients} clients chatting")
    direct_ms: list[float] = []
    direct_skipped: list[str] = []
    move_ms: list[float] = []
    failed: list[str] = []
    with Clients(stack, tokens, n_clients) as clients:
        for tenant in ids:
            st = TenantState.objects.get(tenant_id=tenant)
            if st.state in ("hot", "warm") and st.pod_id == stack.internal("B"):
                # The pod work of a move alone: let go on B, load on A (same generation), timed; then back to B.
                try:
                    started = time.perf_counter()
                    pods.evict(stack.internal("B"), tenant, generation=st.generation, timeout=10)
                    pods.warm(stack.internal("A"), tenant, generation=st.generation, timeout=30)
                    direct_ms.append((time.perf_counter() - started) * 1000)
                    pods.evict(stack.internal("A"), tenant, generation=st.generation, timeout=10)
                except pods.PodCallFailed as exc:  # a client's request reloaded it on B in between: no sample
                    direct_skipped.append(exc.message)
                # Back on B under a new generation, so the late reports of A's direct load and eviction are refused.
                back = tenant_assign_pod(tenant_id=tenant, pod_id=stack.internal("B"), actor=actor)
                pods.warm(stack.internal("B"), tenant, generation=back.generation, timeout=30)
                _settle([tenant], pod=stack.internal("B"))
            started = time.perf_counter()
            move = services.tenant_move(tenant_id=tenant, tier="A", actor=actor, enqueue=False)
            move = services.move_run(move_id=move.id)
            move_ms.append((time.perf_counter() - started) * 1000)
            if move.status != MoveStatus.COMPLETED:
                failed.append(f"{tenant}: {move.error}")
        time.sleep(0.5)
    log(f"moves done ({len(failed)} failed); {len(clients.sent)} messages answered, {clients.refusals} refusals")
    stored: collections.Counter[str] = collections.Counter()
    for tenant in ids:
        st = TenantState.objects.get(tenant_id=tenant)
        if st.pod_id:
            pods.evict(st.pod_id, tenant, generation=st.generation, timeout=10)
        store = TenantStore(stack.data_root, tenant)
        try:
            stored.update(m["content"] for m in store.recent_messages(100_000) if m["role"] == "user")
        finally:
            store.close()
    lost = sum(1 for text in clients.sent if stored[text] == 0)
    duplicated = sum(1 for text in clients.sent if stored[text] > 1)
    direct_p50 = statistics.median(direct_ms) if direct_ms else float("nan")
    result = {
        "tenants": n_tenants,
        "clients": n_clients,
        "tenant_mb": tenant_mb,
        "moves_failed": len(failed),
        "move_p50_ms": round(statistics.median(move_ms), 1),
        "move_p99_ms": round(pct(move_ms, 0.99), 1),
        "direct_p50_ms": round(direct_p50, 1),
        "direct_p99_ms": round(pct(direct_ms, 0.99), 1) if direct_ms else None,
        "direct_skipped": len(direct_skipped),
        "ratio_move_vs_direct": round(statistics.median(move_ms) / direct_p50, 2) if direct_ms else None,
        "move_overhead_p50_ms": round(statistics.median(move_ms) - direct_p50, 1) if direct_ms else None,
        "client_requests": len(clients.latencies),
        "client_max_gap_ms": round(max(clients.latencies), 1) if clients.latencies else None,
        "client_p99_ms": round(pct(clients.latencies, 0.99), 1) if clients.latencies else None,
        "client_refusals": clients.refusals,
        "client_bad_endings": len(clients.bad),
        "messages_answered": len(clients.sent),
        "lost_messages": lost,
        "duplicated_messages": duplicated,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    lost_lines = [f"lost: {text!r} of tenant {tenant}" for text, tenant in clients.sent.items() if stored[text] == 0]
    for line in failed[:5] + clients.bad[:5] + lost_lines[:5]:
        log(line)
    return result


def _settle(ids: list[uuid.UUID], pod: str | None = None, timeout: float = 30.0) -> None:
    """Wait until the pods' reports have every tenant loaded (hot, or warm after an idle timer) in tenant state, on
    `pod` when given (the move reads the pod to evict from tenant state, as in production)."""
    from tenants.models import TenantState

    deadline = time.monotonic() + timeout
    loaded = TenantState.objects.filter(tenant_id__in=ids, state__in=("hot", "warm"))
    if pod is not None:
        loaded = loaded.filter(pod_id=pod)
    while loaded.count() < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(ids) - loaded.count()} tenants were not reported loaded within {timeout:g}s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
