"""Cold start, side by side in one run: `python -m bench.coldstart [--rounds 5] [--sizes 10,100]`.

Real processes: the platform (Django, for state reports and tenant keys) on a PostgreSQL database
`percolate_bench_coldstart` (created and migrated), Redis (invalidation), one tier node (`python -m tiernode`) and
the gateway (`uvicorn gateway.asgi:application`), sharing a local object store directory. For each size (10 MB and
100 MB of tenant data, written into the tenant's RocksDB through tiernode.store before the node starts) one tenant
and path is measured, in rounds:

- **hot**: the tenant is loaded on the pod and hot in tenant state;
- **blob**: evicted through the node (which writes its sealed context blob), cold in tenant state: the gateway
  answers from the blob (the blob cache was dropped by the invalidation, so each round fetches and opens it);
- **wait**: a `mobile_only` tenant with the same amount of data (the platform holds no blob for it), evicted: the
  gateway warms the pod and proxies the request (wait path).

After each eviction the tenant's files are dropped from the OS page cache (`posix_fadvise(DONTNEED)`), because a
tenant goes cold after minutes to hours idle and its pages are long gone from a busy node's memory by then;
`--keep-page-cache` measures the kinder case of a tenant evicted a moment ago.

TTFB here is the time from sending the request to the first byte of *answer content* (the first
`chat.completion.chunk` with text): on the cold paths the gateway sends a `percolate.status` warming event before
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

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_COLDSTART_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_bench_coldstart")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-coldstart-service-token-0123"
MESSAGE_BYTES = 8 * 1024


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
    from tenants.audit import Actor
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


def _has_text(buffer: bytes) -> bool:
    for frame in buffer.split(b"\n\n")[:-1]:  # complete frames only
        if frame.startswith(b"data: {") and json.loads(frame[6:])["choices"][0]["delta"].get("content"):
            return True
    return False


async def chat(session: Any, gateway: str, token: str, text: str) -> dict[str, Any]:
    """One streamed chat through the gateway: ms to the first byte, to the first answer text, and the cold mark."""
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": text}]}
    started = time.perf_counter()
    first_byte = first_text = None
    buffer = b""
    async with session.post(
        f"http://{gateway}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"chat: {response.status} {await response.text()}")
        mark = response.headers.get("X-Percolate-Cold-Start", "hot")
        async for data in response.content.iter_any():
            now = time.perf_counter()
            first_byte = first_byte or now
            buffer += data
            if first_text is None and _has_text(buffer):
                first_text = now
    assert first_byte is not None and first_text is not None, buffer[-300:]
    return {"status_ms": (first_byte - started) * 1000, "ttfb_ms": (first_text - started) * 1000, "kind": mark}


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

    from gateway.tokens import mint_platform_token

    tokens = {
        key: mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=t, ttl_seconds=3600)
        for key, t in tenants.items()
    }
    sizes = sorted({size for size, _ in tenants})
    figures: dict[tuple[int, str], list[dict[str, Any]]] = {}
    async with aiohttp.ClientSession() as session:
        for round_no in range(args.rounds):
            for size in sizes:
                nb, mo = (size, "node_based"), (size, "mobile_only")
                # hot
                await node_call(session, node, "warm", tenants[nb])
                await wait_state(tenants[nb], "hot")
                await chat(session, gateway, tokens[nb], "warm-up")
                figures.setdefault((size, "hot"), []).append(await chat(session, gateway, tokens[nb], "hot?"))
                # cold with a blob (written by the node on eviction)
                evicted = await node_call(session, node, "evict", tenants[nb])
                assert evicted["context_blob"] in ("written", "current"), evicted
                await wait_state(tenants[nb], "cold")
                make_cold_on_disk(args, tenants[nb])
                figures.setdefault((size, "blob"), []).append(await chat(session, gateway, tokens[nb], "blob?"))
                await wait_state(tenants[nb], "hot")
                # cold without a blob (mobile_only: the platform has none): the wait path
                await node_call(session, node, "warm", tenants[mo])
                await wait_state(tenants[mo], "hot")
                await node_call(session, node, "evict", tenants[mo])
                await wait_state(tenants[mo], "cold")
                make_cold_on_disk(args, tenants[mo])
                figures.setdefault((size, "wait"), []).append(await chat(session, gateway, tokens[mo], "wait?"))
                await wait_state(tenants[mo], "hot")
            log(f"round {round_no + 1}/{args.rounds} done")
    out: dict[str, Any] = {}
    for (size, path), runs in figures.items():
        kinds = {r["kind"] for r in runs}
        expected = {"hot": "hot", "blob": "blob", "wait": "wait"}[path]
        assert kinds == {expected}, (size, path, kinds)
        out[f"ttfb_{path}_{size}mb_ms"] = round(statistics.median(r["ttfb_ms"] for r in runs), 2)
        out[f"status_{path}_{size}mb_ms"] = round(statistics.median(r["status_ms"] for r in runs), 2)
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
    web_port, node_port, gw_port = free_port(), free_port(), free_port()
    node = f"127.0.0.1:{node_port}"
    procs = []
    try:
        procs.append(
            start([sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"], env=env, cwd=ROOT)
        )
        node_env = {
            **env,
            "PERCOLATE_TENANT_TIER": "B",
            "PORT": str(node_port),
            "HOST": "127.0.0.1",
            "POD_ID": node,
            "TENANT_DATA_ROOT": str(data_root),
            "PLATFORM_URL": f"http://127.0.0.1:{web_port}",
            "PERCOLATE_IDLE_SWEEP_SECONDS": "0",
        }
        procs.append(start([sys.executable, "-m", "tiernode"], env=node_env, cwd=ROOT))
        gw_env = {**env, "GATEWAY_PODS_B": node, "GATEWAY_WARM_TIMEOUT_SECONDS": "30"}
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "gateway.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gw_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
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
