"""Cold start, side by side in one run: `python -m bench.coldstart [--rounds 5] [--sizes 10,100]`.

Real processes: the platform (Django, for state reports and tenant keys) on a PostgreSQL database
`percolate_bench_coldstart` (created and migrated), Redis (invalidation), one tier node (`python -m tiernode`) and
the gateway (`python -m gateway`), sharing a local object store directory. For each size (10 MB and
100 MB of tenant data, written into the tenant's RocksDB through tiernode.store before the node starts) one tenant
and path is measured, in rounds:

- **hot**: the tenant is loaded on the pod and hot in tenant state;
- **blob**: evicted through the node (which writes its sealed context blob), cold in tenant state: the gateway
  answers from the blob. The first round is the first cold start this gateway serves for the tenant: it fetches the
  blob, looks its key up and opens it (`ttfb_blob_fetched_*`, also printed). From then on the gateway holds the blob
  and re-reads it itself when the node writes a new one (the `tenant:<id>` invalidation), so later rounds find it in
  memory, as a real tenant cold-starting again on the same gateway would. Each run is labelled from the gateway's
  /metrics counters, not assumed;
- **wait**: a `mobile_only` tenant with the same amount of data (the platform holds no blob for it), evicted: the
  gateway warms the pod and proxies the request (wait path).

What a tenant that went cold after minutes to hours idle meets, reproduced for both cold paths:

- its files are no longer in the OS page cache: dropped after each eviction (`posix_fadvise(DONTNEED)`);
  `--keep-page-cache` measures the kinder case of a tenant evicted a moment ago;
- its route is no longer in the gateway's route cache: the gateway runs with a 1 s route TTL and the bench waits it
  out before a cold request (`--keep-route-cache` skips that). The gateway keeps re-reading the routes of the tenants
  whose blob it holds, so the blob path finds the route in memory; the wait path reads it from the database. How
  many runs read it from the database is printed for each path.

Each measured request is preceded (untimed) by one to Redis, the node and the gateway, on the connections it uses:
between the bench's steps every process sleeps 100 ms or more, and on a small VM the first request after that pays
about 2 ms of wake-up on every hop, the same constant on every path (printed: a /healthz after 150 ms idle vs
primed). A gateway or node serving traffic is not idle. `--idle-wakeup` leaves it in.

The client is a lean HTTP/1.1 client on one keep-alive connection (bench.sse_client), the same for all three paths:
aiohttp's own per-request work was a good part of a 2 ms figure.

TTFB here is the time from sending the request to the first byte of *answer content* (the first
`chat.completion.chunk` with text): on the cold paths the gateway sends a `percolate.status` warming comment before
that, which would make every cold path look instant; its time is printed too (`status_ms`). Each figure is the median
over the rounds. The last line is one JSON object with every TTFB, `ratio_blob_vs_hot` (100 MB) and
`ratio_blob_vs_wait_100mb`. Targets: blob <= 3x hot, and <= 0.1x wait for 100 MB.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.procs import free_port, start, stop, wait_http
from bench.sse_client import SseClient

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_COLDSTART_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_bench_coldstart")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-coldstart-service-token-0123"
MESSAGE_BYTES = 8 * 1024
ROUTE_TTL = 1.0  # the gateway's route-cache TTL in this bench (30 s by default), so an idle tenant's entry can expire


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_env(objects: Path) -> dict[str, str]:
    policy = {tier: {"requests_per_minute": 10**9, "max_concurrent_streams": 10**6} for tier in "ABC"}
    env = {k: v for k, v in os.environ.items() if k not in ("S3_ENDPOINT_URL", "CELERY_TASK_ALWAYS_EAGER")}
    return {
        **env,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "percolate_platform.settings",
        "PLATFORM_SERVICE_TOKEN": TOKEN,
        "OBJECT_STORE_ROOT": str(objects),
        "TIER_POLICY_JSON": json.dumps(policy),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOG_LEVEL": "WARNING",
    }


def setup_django(env: dict[str, str]) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "PLATFORM_SERVICE_TOKEN", "OBJECT_STORE_ROOT", "TIER_POLICY_JSON"):
        os.environ[name] = env[name]
    os.environ.pop("S3_ENDPOINT_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
    name = DB_URL.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def provision(sizes: list[int]) -> dict[tuple[int, str], uuid.UUID]:
    """Per size: a node_based tenant (hot, then cold with its blob) and a mobile_only one (no blob: the wait path)."""
    from core.audit import Actor
    from tenants.services import tenant_provision

    return {
        (size, mode): tenant_provision(
            email=f"coldbench-{size}mb-{mode}-{uuid.uuid4().hex[:8]}@example.com",
            tier="B",
            security_mode=mode,
            actor=Actor.system("bench"),
        ).id
        for size in sizes
        for mode in ("node_based", "mobile_only")
    }


def fill(data_root: Path, tenant_id: uuid.UUID, megabytes: int) -> int:
    """Write ~`megabytes` of messages into the tenant's RocksDB (incompressible text), plus a few facts."""
    import base64

    from tiernode.store import TenantStore, tenant_path

    store = TenantStore(data_root, tenant_id)
    try:
        store.remember("My dog is Rex. I prefer green tea. Remember that the launch is on Friday.")
        for _ in range(megabytes * 1024 * 1024 // MESSAGE_BYTES):
            text = base64.b64encode(os.urandom(MESSAGE_BYTES * 3 // 4)).decode()
            store.append_message("user", text)
        store.append_message("user", "What should I pack for the launch?")
    finally:
        store.close()
    return sum(p.stat().st_size for p in tenant_path(data_root, tenant_id).rglob("*") if p.is_file())


def route(tenant_id: uuid.UUID) -> Any:
    from tenants.selectors import tenant_route

    return tenant_route(tenant_id=tenant_id)


async def wait_state(tenant_id: uuid.UUID, state: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (await asyncio.to_thread(route, tenant_id)).state != state:
        if time.monotonic() > deadline:
            raise RuntimeError(f"tenant {tenant_id} did not reach {state}")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # the invalidation message reaches the gateway


async def node_call(session: Any, node: str, action: str, tenant_id: uuid.UUID) -> dict[str, Any]:
    generation = (await asyncio.to_thread(route, tenant_id)).generation
    async with session.post(
        f"http://{node}/internal/{action}/{tenant_id}",
        json={"generation": generation},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        doc: dict[str, Any] = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{action} {tenant_id}: {response.status} {doc}")
        return doc


async def chat(client: SseClient, token: str, text: str) -> dict[str, Any]:
    """One streamed chat through the gateway: ms to the first byte, to the first answer text, and the cold mark."""
    timed = await client.chat(token, text)
    kind = timed.headers.get("x-percolate-cold-start", "hot")
    return {"status_ms": timed.status_ms, "ttfb_ms": timed.ttfb_ms, "kind": kind}


def counters(metrics_text: bytes) -> dict[str, float]:
    """The gateway's blob-cache and route-cache lookup counters, from its /metrics page."""
    wanted = {
        'percolate_gateway_blob_cache_lookups_total{result="hit"}': "blob_hit",
        'percolate_gateway_cache_lookups_total{cache="route",result="miss"}': "route_miss",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in metrics_text.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


class Probe:
    """Measured chats, each one preceded (untimed) by what the run asks for: waking every process on the path."""

    def __init__(
        self, args: argparse.Namespace, client: SseClient, background: SseClient, session: Any, node: str
    ) -> None:
        import redis

        self.args, self.client, self.background, self.session, self.node = args, client, background, session, node
        self.redis = redis.Redis.from_url(REDIS_URL)

    async def counters(self) -> dict[str, float]:
        status, body = await self.client.get("/metrics")
        assert status == 200, status
        return counters(body)

    async def prime(self) -> None:
        """One request to Redis, the node and the gateway just before the measured one (on the connections it uses).

        Between the bench's steps every process here sleeps for 100 ms or more, and on this (virtual) machine the
        first request after such a pause pays about 2 ms of CPU wake-up on each side (a bare uvicorn app answers a
        /healthz in ~0.2 ms primed, ~2.2 ms after 150 ms idle). A gateway or node serving traffic is not idle; the
        constant would be added to every path alike and hide the work each path does."""
        if self.args.idle_wakeup:
            return
        self.redis.ping()  # the gateway's rate limiter asks it on every path
        async with self.session.get(f"http://{self.node}/health") as response:
            await response.read()
        status, _ = await self.client.get("/healthz")
        assert status == 200, status

    async def wakeup_ms(self, samples: int = 5) -> tuple[float, float]:
        """Median ms of a gateway /healthz after 150 ms idle, and right after another one: the cost of waking up."""
        idle: list[float] = []
        primed: list[float] = []
        for _ in range(samples):
            for times in (idle, primed):
                await asyncio.sleep(0.15)
                if times is primed:
                    await self.client.get("/healthz")
                started = time.perf_counter()
                await self.client.get("/healthz")
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(idle), statistics.median(primed)

    async def chat(self, token: str, text: str) -> dict[str, Any]:
        before = await self.counters()
        await self.prime()
        run = await chat(self.client, token, text)
        after = await self.counters()
        run["blob_in_memory"] = after["blob_hit"] > before["blob_hit"]
        run["route_fetched"] = after["route_miss"] > before["route_miss"]
        return run

    async def idle_gone(self) -> None:
        """A tenant idle long enough to go cold is long gone from the gateway's route cache too (entries live
        ROUTE_TTL here, GATEWAY_ROUTE_TTL_SECONDS in production): wait it out, unless --keep-route-cache.

        It is the tenant that is idle, not the platform: meanwhile the gateway, the node and the management database
        go on serving others (here a /healthz to the gateway, a /health to the node and a `SELECT 1`, every 10 ms: a
        light stand-in for other tenants' traffic), as in production. `--quiet-idle` lets every process sleep
        through the wait instead, which adds milliseconds of wake-up to every step of both cold paths."""
        if self.args.keep_route_cache:
            return
        deadline = time.perf_counter() + ROUTE_TTL + 0.1
        while time.perf_counter() < deadline:
            if not self.args.quiet_idle:
                status, _ = await self.background.get("/healthz")
                assert status == 200, status
                async with self.session.get(f"http://{self.node}/health") as response:
                    await response.read()
                await asyncio.to_thread(_select_one)
            await asyncio.sleep(0.01)


def _select_one() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def make_cold_on_disk(args: argparse.Namespace, tenant_id: uuid.UUID) -> None:
    """Drop the tenant's files from the OS page cache, as hours of idleness on a busy node would: a cold tenant's
    RocksDB is read from the volume when its pod loads it, not from memory. (POSIX_FADV_DONTNEED on each file: no
    privileges needed, nothing else on the machine is affected.)"""
    if args.keep_page_cache:
        return
    for path in (args.data_root / str(tenant_id)).rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


async def measure(
    args: argparse.Namespace, gateway: str, node: str, tenants: dict[tuple[int, str], uuid.UUID]
) -> dict[str, Any]:
    import aiohttp
    from django.conf import settings

    from gateway.auth.tokens import mint_platform_token

    tokens = {
        key: mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=t, ttl_seconds=3600)
        for key, t in tenants.items()
    }
    sizes = sorted({size for size, _ in tenants})
    figures: dict[tuple[int, str], list[dict[str, Any]]] = {}
    host, port = gateway.rsplit(":", 1)
    client = SseClient(host, int(port))
    async with aiohttp.ClientSession() as session:
        background = SseClient(host, int(port))
        probe = Probe(args, client, background, session, node)
        wakeup = await probe.wakeup_ms()
        for round_no in range(args.rounds):
            for size in sizes:
                nb, mo = (size, "node_based"), (size, "mobile_only")
                # hot
                await node_call(session, node, "warm", tenants[nb])
                await wait_state(tenants[nb], "hot")
                await chat(client, tokens[nb], "warm-up")
                figures.setdefault((size, "hot"), []).append(await probe.chat(tokens[nb], "hot?"))
                # cold with a blob (written by the node on eviction)
                evicted = await node_call(session, node, "evict", tenants[nb])
                assert evicted["context_blob"] in ("written", "current"), evicted
                await wait_state(tenants[nb], "cold")
                make_cold_on_disk(args, tenants[nb])
                await probe.idle_gone()
                figures.setdefault((size, "blob"), []).append(await probe.chat(tokens[nb], "blob?"))
                await wait_state(tenants[nb], "hot")
                # cold without a blob (mobile_only: the platform has none): the wait path
                await node_call(session, node, "warm", tenants[mo])
                await wait_state(tenants[mo], "hot")
                await node_call(session, node, "evict", tenants[mo])
                await wait_state(tenants[mo], "cold")
                make_cold_on_disk(args, tenants[mo])
                await probe.idle_gone()
                figures.setdefault((size, "wait"), []).append(await probe.chat(tokens[mo], "wait?"))
                await wait_state(tenants[mo], "hot")
            log(f"round {round_no + 1}/{args.rounds} done")
    await client.close()
    await background.close()
    out: dict[str, Any] = {"healthz_after_idle_ms": round(wakeup[0], 2), "healthz_primed_ms": round(wakeup[1], 2)}
    for (size, path), runs in figures.items():
        kinds = {r["kind"] for r in runs}
        expected = {"hot": "hot", "blob": "blob", "wait": "wait"}[path]
        assert kinds == {expected}, (size, path, kinds)
        out[f"ttfb_{path}_{size}mb_ms"] = round(statistics.median(r["ttfb_ms"] for r in runs), 2)
        out[f"status_{path}_{size}mb_ms"] = round(statistics.median(r["status_ms"] for r in runs), 2)
        out[f"route_fetched_{path}_{size}mb"] = sum(r["route_fetched"] for r in runs)
        if path == "blob":
            fetched = [r["ttfb_ms"] for r in runs if not r["blob_in_memory"]]
            out[f"blob_fetched_{size}mb"] = len(fetched)
            if fetched:  # the first cold start this gateway serves for the tenant: fetch, key lookup, decryption
                out[f"ttfb_blob_fetched_{size}mb_ms"] = round(statistics.median(fetched), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="10,100", help="tenant data sizes in MB")
    parser.add_argument(
        "--keep-page-cache",
        action="store_true",
        help="leave a cold tenant's files in the OS page cache (as if it went cold a moment ago)",
    )
    parser.add_argument(
        "--keep-route-cache",
        action="store_true",
        help="measure a cold tenant while the gateway still holds its route (as if it went cold a moment ago)",
    )
    parser.add_argument(
        "--quiet-idle",
        action="store_true",
        help="let every process sleep while a tenant's route cache expires (no other traffic meanwhile)",
    )
    parser.add_argument(
        "--idle-wakeup",
        action="store_true",
        help="do not wake the gateway and the node before each measured request (count their wake-up from idle)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    objects, data_root = work / "objects", work / "tenant-data"
    args.data_root = data_root
    objects.mkdir()
    env = base_env(objects)
    setup_django(env)
    tenants = provision(sizes)
    for (size, mode), tenant_id in tenants.items():
        on_disk = fill(data_root, tenant_id, size)
        log(f"tenant {tenant_id} ({mode}): {size} MB requested, {on_disk / 1e6:.1f} MB on disk")
    web_port, node_port, node_public_port, gw_port = free_port(), free_port(), free_port(), free_port()
    node = f"127.0.0.1:{node_port}"  # the node's internal listener: its address in tenant state, direct pod calls
    procs = []
    try:
        procs.append(
            start([sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"], env=env, cwd=ROOT)
        )
        node_env = {
            **env,
            "PERCOLATE_TENANT_TIER": "B",
            "PORT": str(node_public_port),
            "INTERNAL_PORT": str(node_port),
            "HOST": "127.0.0.1",
            "POD_ID": node,
            "TENANT_DATA_ROOT": str(data_root),
            "PLATFORM_URL": f"http://127.0.0.1:{web_port}",
            "PERCOLATE_IDLE_SWEEP_SECONDS": "0",
        }
        procs.append(start([sys.executable, "-m", "tiernode"], env=node_env, cwd=ROOT))
        gw_env = {
            **env,
            "GATEWAY_PODS_B": f"127.0.0.1:{node_public_port}/{node_port}",
            "GATEWAY_WARM_TIMEOUT_SECONDS": "30",
            "GATEWAY_ROUTE_TTL_SECONDS": str(ROUTE_TTL),
        }
        procs.append(
            start(
                [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(gw_port)],
                env=gw_env,
                cwd=ROOT,
            )
        )
        wait_http(web_port, "/admin/login/")
        wait_http(node_port, "/health")
        wait_http(gw_port, "/healthz")
        result = asyncio.run(measure(args, f"127.0.0.1:{gw_port}", node, tenants))
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    big = max(sizes)
    result["ratio_blob_vs_hot"] = round(result[f"ttfb_blob_{big}mb_ms"] / result[f"ttfb_hot_{big}mb_ms"], 3)
    result[f"ratio_blob_vs_wait_{big}mb"] = round(result[f"ttfb_blob_{big}mb_ms"] / result[f"ttfb_wait_{big}mb_ms"], 3)
    for size in sizes:
        result[f"ratio_blob_vs_hot_{size}mb"] = round(
            result[f"ttfb_blob_{size}mb_ms"] / result[f"ttfb_hot_{size}mb_ms"], 3
        )
        result[f"ratio_blob_vs_wait_{size}mb"] = round(
            result[f"ttfb_blob_{size}mb_ms"] / result[f"ttfb_wait_{size}mb_ms"], 3
        )
    print(f"{'TTFB to first answer text (median ms)':<40}" + "".join(f"{f'{s} MB':>12}" for s in sizes))
    for path in ("hot", "blob", "wait"):
        print(f"{path:<40}" + "".join(f"{result[f'ttfb_{path}_{s}mb_ms']:>12.2f}" for s in sizes))
    print(
        f"{'first byte (warming event) blob':<40}" + "".join(f"{result[f'status_blob_{s}mb_ms']:>12.2f}" for s in sizes)
    )
    print(
        f"{'first byte (warming event) wait':<40}" + "".join(f"{result[f'status_wait_{s}mb_ms']:>12.2f}" for s in sizes)
    )
    print(
        f"{'blob fetched and opened (runs: median)':<40}"
        + "".join(
            f"{result[f'blob_fetched_{s}mb']:>4}: {result.get(f'ttfb_blob_fetched_{s}mb_ms', float('nan')):>5.2f}"
            for s in sizes
        )
    )
    for path in ("hot", "blob", "wait"):
        print(
            f"{f'route read from the DB, {path} (runs)':<40}"
            + "".join(f"{result[f'route_fetched_{path}_{s}mb']:>12}" for s in sizes)
        )
    print(
        f"{'gateway /healthz after 150 ms idle':<40}{result['healthz_after_idle_ms']:>12.2f}"
        f" (primed {result['healthz_primed_ms']:.2f}; {'not ' if args.idle_wakeup else ''}primed above)"
    )
    print(
        f"{'ratio blob / hot (target <= 3)':<40}"
        + "".join(f"{result[f'ratio_blob_vs_hot_{s}mb']:>12.3f}" for s in sizes)
    )
    print(
        f"{'ratio blob / wait (target <= 0.1)':<40}"
        + "".join(f"{result[f'ratio_blob_vs_wait_{s}mb']:>12.3f}" for s in sizes)
    )
    met = result["ratio_blob_vs_hot"] <= 3 and result[f"ratio_blob_vs_wait_{big}mb"] <= 0.1
    print(f"targets {'met' if met else 'NOT met'}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
