"""Warm-load time of a tenant by size: ``python -m tiernode.loadtime [--sizes 10,100] [--runs 5]``.

Builds tenants of N MB of messages (RocksDB on disk, built directly with the node's store), starts a real node
(``python -m tiernode``) and times ``POST /internal/warm/{id}`` from cold (store closed) over HTTP, then the first
chat, then ``/internal/evict``; repeats. The OS page cache is not dropped, so these are warm-disk figures.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from core.pod_credentials import proxy_credential
from tiernode.store import TenantStore

TOKEN = "loadtime-service-token-000"
WORDS = [
    "memory",
    "tenant",
    "pod",
    "warm",
    "cold",
    "hot",
    "archive",
    "gateway",
    "stream",
    "token",
    "reply",
    "fact",
    "preference",
    "message",
    "node",
    "tier",
    "platform",
    "sealed",
    "context",
    "blob",
    "rocksdb",
    "flush",
    "close",
    "evict",
    "load",
    "generation",
]


def build_tenant(root: Path, tenant_id: uuid.UUID, megabytes: int) -> tuple[int, int, float]:
    """Write ~``megabytes`` of messages (half words, half incompressible); returns (messages, bytes on disk, s)."""
    started = time.perf_counter()
    rng = random.Random(tenant_id.int)  # noqa: S311 - test data, not secrets
    store = TenantStore(root, tenant_id)
    store.set_fact("name", "Load Test")
    target, written, n = megabytes << 20, 0, 0
    while written < target:
        text = " ".join(rng.choice(WORDS) for _ in range(60)) + " " + base64.b64encode(rng.randbytes(384)).decode()
        store.append_message("user" if n % 2 == 0 else "assistant", text)
        written += len(text) + 60
        n += 1
    store.close()
    size = sum(f.stat().st_size for f in (root / str(tenant_id)).rglob("*") if f.is_file())
    return n, size, time.perf_counter() - started


def local_node_env(*, tier: str, data_root: Path, port: int, internal_port: int, **extra: str) -> dict[str, str]:
    """The environment of a tier node run locally on 127.0.0.1 (this process's environment plus the node's own)."""
    return {
        **os.environ,
        "PERCOLATE_TENANT_TIER": tier,
        "TENANT_DATA_ROOT": str(data_root),
        "PORT": str(port),
        "INTERNAL_PORT": str(internal_port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        hdrs = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json", **(headers or {})}
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,100", help="tenant sizes in MB, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.root or tempfile.mkdtemp(prefix="tiernode-loadtime-"))
    data_root, objects = work / "tenant-data", work / "objects"
    tenants = []
    for mb in (int(s) for s in args.sizes.split(",")):
        tid = uuid.uuid4()
        n, size, secs = build_tenant(data_root, tid, mb)
        print(f"built {mb:>4} MB tenant: {n} messages, {size / 2**20:.1f} MiB on disk, in {secs:.1f}s")
        tenants.append((mb, tid, size))
    port, public_port = _free_port(), _free_port()
    env = local_node_env(
        tier="A", data_root=data_root, port=public_port, internal_port=port,
        OBJECT_STORE_ROOT=str(objects), PLATFORM_URL="", PLATFORM_SERVICE_TOKEN=TOKEN,
    )  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "tiernode"], env=env)
    try:
        for _ in range(200):
            try:
                if _call(port, "GET", "/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        print(
            f"\n{'tenant':>8} {'on disk':>9} {'warm (HTTP) median':>19} {'min':>8} {'max':>8} "
            f"{'node load_seconds':>18} {'first chat':>11} {'evict':>8}"
        )
        for mb, tid, size in tenants:
            walls, loads, chats, evicts = [], [], [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                status, body = _call(port, "POST", f"/internal/warm/{tid}", {"generation": 1})
                walls.append(time.perf_counter() - t0)
                assert status == 200, body
                loads.append(json.loads(body)["load_seconds"])
                t0 = time.perf_counter()
                status, _ = _call(
                    public_port,
                    "POST",
                    "/v1/chat/completions",
                    {"messages": [{"role": "user", "content": "hello"}]},
                    {"x-percolate-tenant": str(tid), "authorization": f"Bearer {proxy_credential(TOKEN)}"},
                )
                chats.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert _call(port, "POST", f"/internal/evict/{tid}", {"generation": 1})[0] == 200
                evicts.append(time.perf_counter() - t0)
            ms = 1000.0
            print(
                f"{mb:>5} MB {size / 2**20:>7.1f}Mi {statistics.median(walls) * ms:>16.1f} ms "
                f"{min(walls) * ms:>5.1f}ms {max(walls) * ms:>5.1f}ms {statistics.median(loads) * ms:>15.1f} ms "
                f"{statistics.median(chats) * ms:>8.1f} ms {statistics.median(evicts) * ms:>5.1f}ms"
            )
        print(
            "\nreference: tier-pod contract has no SLO; the gateway answers cold tenants from the context blob "
            "while the pod warms, so warm-load time is the latency that blob path hides."
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
