"""Connection budget under load: web, worker and gateway processes at their configured concurrency, with and without
Django's psycopg pool, while PostgreSQL's connections are counted.

    python -m bench.db_pool [--seconds 20] [--tenants 400] [--port-base 8680]

One database of its own (`BENCH_POOL_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/percolate_pool_bench,
recreated and dropped; the name must contain "bench"), Redis at `REDIS_URL`. Processes, as the manifests run them:

- web: gunicorn, 3 sync workers (k8s/platform/web.yaml), loaded with GET /api/tenants/{id}/ (token auth + a read);
- worker: celery, prefork concurrency 4 (k8s/platform/worker.yaml), fed `archival.requeue_stalled_jobs` tasks (each
  one query);
- gateway: 3 processes (the Deployment's minimum replicas), loaded with GET /v1/models for many tenants with a route
  TTL of 50 ms, so most requests read the tenant's route from the database; an nginx answers as the tier pod.

Each mode runs the same load for ``--seconds``: ``persistent`` (CONN_MAX_AGE=60, a connection per thread), ``pool``
(DATABASE_POOL_MAX_SIZE: web 1, worker 1 per process, gateway 2 per process) and ``chosen`` (what the manifests run:
the gateway pooled, 2 per process; web and worker one persistent connection per process). A sampler counts
`pg_stat_activity` by application name (PGAPPNAME = the role) every 100 ms. The last line is one JSON object: per
mode the peak connections per role and in total, the budget, and the throughput of each role.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.db import drop_database, recreate_database
from bench.gateway import UPSTREAM_BODY, ensure_tools, nginx
from bench.procs import start, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_POOL_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_pool_bench")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
WEB_WORKERS, WORKER_CONCURRENCY, GATEWAYS = 3, 4, 3
# Pool size per process and role in each mode; 0 = no pool (one persistent connection per thread, CONN_MAX_AGE=60).
MODES = {
    "persistent": {"web": 0, "worker": 0, "gateway": 0},
    "pool": {"web": 1, "worker": 1, "gateway": 2},
    "chosen": {"web": 0, "worker": 0, "gateway": 2},  # what the manifests run: only the threaded gateway pools
}
WEB_CLIENTS, GATEWAY_CLIENTS = 24, 32


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    policy = {tier: {"requests_per_minute": 10**9, "max_concurrent_streams": 10**6} for tier in "ABC"}
    return {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "percolate_platform.settings",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "TIER_POLICY_JSON": json.dumps(policy),
        "LOG_LEVEL": "WARNING",
    }


def prepare(tenants: int) -> dict[str, Any]:
    """Tenants, a staff token and platform tokens, made in a child process on the bench database."""
    code = f"""
import django, json
django.setup()
from django.conf import settings
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from accounts.models import User
from gateway.auth.tokens import mint_platform_token
from core.audit import Actor
from tenants.services import tenant_provision
call_command("migrate", verbosity=0)
ids = [tenant_provision(email=f"pool-{{i}}@example.com", tier="A", actor=Actor.system("bench")).id
       for i in range({tenants})]
staff = User.objects.create_superuser("poolbench", "poolbench@example.com", "not-a-secret-password")
print(json.dumps({{"ids": [str(i) for i in ids], "staff_token": Token.objects.create(user=staff).key,
    "tokens": [mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=i, ttl_seconds=3600)
               for i in ids]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base_env(), check=True, capture_output=True)
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


class Sampler(threading.Thread):
    """Counts the bench database's connections by application name every 100 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[dict[str, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        name = urlsplit(DB_URL).path.lstrip("/")
        with psycopg.connect(DB_URL.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            while not self.stopping.wait(0.1):
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1",
                    [name],
                ).fetchall()
                self.samples.append({app or "other": n for app, n in rows})

    def peaks(self) -> dict[str, int]:
        peak: dict[str, int] = defaultdict(int)
        for sample in self.samples:
            for app, n in sample.items():
                peak[app] = max(peak[app], n)
            peak["total"] = max(peak["total"], sum(sample.values()))
        return dict(peak)

    def median_total(self) -> float:
        return statistics.median(sum(s.values()) for s in self.samples) if self.samples else 0.0


def role_env(role: str, mode: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**base_env(), "PGAPPNAME": role, **(extra or {})}
    size = MODES[mode][role]
    if size:
        env["DATABASE_POOL_MAX_SIZE"] = str(size)
    else:
        env["DATABASE_CONN_MAX_AGE"] = "60"
    return env


async def hammer(urls: list[str], headers: list[dict[str, str]], clients: int, seconds: float) -> dict[str, float]:
    import aiohttp

    counts = {"ok": 0, "failed": 0}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            i += clients
            started = time.perf_counter()
            try:
                async with session.get(urls[i % len(urls)], headers=headers[i % len(headers)]) as response:
                    await response.read()
                    counts["ok" if response.status == 200 else "failed"] += 1
            except aiohttp.ClientError:
                counts["failed"] += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session, n) for n in range(clients)))
    latencies.sort()
    return {
        "rps": round(counts["ok"] / seconds, 1),
        "failed": counts["failed"],
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else 0.0,
    }


def run_mode(mode: str, data: dict[str, Any], ports: dict[str, Any], seconds: float) -> dict[str, Any]:
    import redis

    procs = [
        start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "percolate_platform.wsgi",
                "--workers",
                str(WEB_WORKERS),
                "--bind",
                f"127.0.0.1:{ports['web']}",
            ],
            env=role_env("web", mode),
            cwd=ROOT,
        ),
        start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "percolate_platform",
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--pool",
                "prefork",
                "--loglevel",
                "WARNING",
            ],
            env=role_env("worker", mode),
            cwd=ROOT,
        ),
    ]
    gateway_extra = {"GATEWAY_PODS_A": f"127.0.0.1:{ports['upstream']}", "GATEWAY_ROUTE_TTL_SECONDS": "0.05"}
    for port in ports["gateways"]:
        procs.append(
            start(
                [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                env=role_env("gateway", mode, gateway_extra),
                cwd=ROOT,
            )
        )
    try:
        wait_http(ports["web"], "/healthz")
        for port in ports["gateways"]:
            wait_http(port, "/healthz")
        broker = redis.Redis.from_url(REDIS_URL)
        from celery import Celery

        app = Celery(broker=REDIS_URL)
        tasks = 20_000
        for _ in range(tasks):
            app.send_task("archival.requeue_stalled_jobs")
        sampler = Sampler()
        sampler.start()
        web_urls = [f"http://127.0.0.1:{ports['web']}/api/tenants/{i}/" for i in data["ids"]]
        gw_urls = [f"http://127.0.0.1:{p}/v1/models" for p in ports["gateways"]]

        async def load() -> tuple[dict[str, float], dict[str, float]]:
            web = hammer(web_urls, [{"Authorization": f"Token {data['staff_token']}"}], WEB_CLIENTS, seconds)
            gw_headers = [{"Authorization": f"Bearer {t}"} for t in data["tokens"]]
            gateway = hammer(gw_urls, gw_headers, GATEWAY_CLIENTS * GATEWAYS, seconds)
            return await asyncio.gather(web, gateway)

        queued_before = broker.llen("celery")
        web, gateway = asyncio.run(load())
        done = queued_before - broker.llen("celery")
        sampler.stopping.set()
        sampler.join()
        broker.delete("celery")
        return {
            "peak_connections": sampler.peaks(),
            "median_connections": sampler.median_total(),
            "web": web,
            "gateway": gateway,
            "worker_tasks_per_s": round(done / seconds, 1),
        }
    finally:
        for proc in procs:
            stop(proc)


def budget(mode: str) -> dict[str, int]:
    """What the mode promises; only a pooled gateway has a bound (without one: one connection per executor thread)."""
    sizes = MODES[mode]
    figures = {
        "web": WEB_WORKERS,  # sync workers: one request at a time, one connection each, pooled or not
        "worker": WORKER_CONCURRENCY + 1,  # prefork children, and the parent (metrics)
        "gateway": GATEWAYS * sizes["gateway"],
    }
    return {**figures, "total": sum(figures.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--tenants", type=int, default=400)
    parser.add_argument("--port-base", type=int, default=8680)
    parser.add_argument("--modes", default="persistent,chosen,chosen,persistent", help=f"of {', '.join(MODES)}")
    parser.add_argument("--gateway-pool", type=int, default=2, help="pool size per gateway process")
    args = parser.parse_args(argv)
    if not set(args.modes.split(",")) <= set(MODES):
        parser.error(f"--modes: each one of {', '.join(MODES)}")
    if "bench" not in urlsplit(DB_URL).path:
        parser.error("BENCH_POOL_DATABASE_URL must name a database containing 'bench' (it is dropped)")
    ensure_tools()
    base = args.port_base
    ports = {"web": base, "gateways": [base + 1, base + 2, base + 3], "upstream": base + 4}
    recreate_database(DB_URL)
    modes = args.modes.split(",")
    MODES["pool"]["gateway"] = MODES["chosen"]["gateway"] = args.gateway_pool
    results: dict[str, Any] = {"budget": {mode: budget(mode) for mode in set(modes) if MODES[mode]["gateway"]}}
    with tempfile.TemporaryDirectory(prefix="percolate-pool-") as tmp:
        upstream = nginx(tmp, ports["upstream"], 1, UPSTREAM_BODY)
        try:
            log(f"preparing {args.tenants} tenants")
            data = prepare(args.tenants)
            for mode in modes:  # a mode may be named twice (e.g. persistent,pool,pool,persistent)
                log(f"mode {mode}: {args.seconds:.0f} s of load")
                results.setdefault(mode, []).append(run_mode(mode, data, ports, args.seconds))
                log(json.dumps(results[mode][-1]))
        finally:
            stop(upstream)
            drop_database(DB_URL)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
