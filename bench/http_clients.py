"""Which HTTP client should the gateway proxy with? `python -m bench.http_clients`.

Runs the same load, side by side in one run, against one nginx upstream: N concurrent tasks each sending GETs
through (a) one shared aiohttp ClientSession, (b) the gateway's own pod pool (gateway.pods.h1pool), (c) one shared
httpx.AsyncClient, (d) a new httpx.AsyncClient per request (the spike's sketch). Prints requests/s for each and the
ratios to aiohttp; last line is JSON.
"""

import argparse
import asyncio
import json
import tempfile
import time

import aiohttp
import httpx

from bench.gateway import UPSTREAM_BODY, ensure_tools, nginx
from bench.procs import free_port, stop, wait_http
from gateway.pods.h1pool import H1Pool


async def _run(concurrency: int, seconds: float, one_request) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await one_request()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    results: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def via_aiohttp() -> None:
            async with session.get(url) as response:
                await response.read()

        results["aiohttp_shared"] = await _run(concurrency, seconds, via_aiohttp)
    pool = H1Pool(connect_timeout=2)
    pod, target = url.removeprefix("http://").split("/", 1)

    async def via_pod_pool() -> None:
        response = await pool.request(b"GET", pod, b"/" + target.encode(), [], None)
        await response.read(5)
        response.release()

    results["gateway_pod_pool"] = await _run(concurrency, seconds, via_pod_pool)
    await pool.close()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def via_httpx() -> None:
            (await client.get(url)).read()

        results["httpx_shared"] = await _run(concurrency, seconds, via_httpx)

    async def via_httpx_per_request() -> None:
        async with httpx.AsyncClient() as fresh:
            (await fresh.get(url)).read()

    results["httpx_per_request"] = await _run(concurrency, seconds, via_httpx_per_request)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    ensure_tools()
    tmp = tempfile.mkdtemp(prefix="bench-clients-")
    port = free_port()
    upstream = nginx(tmp, port, 1, UPSTREAM_BODY)
    try:
        wait_http(port)
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/", args.concurrency, args.seconds))
    finally:
        stop(upstream)
    for name, rps in results.items():
        print(f"{name:18} {rps:>9.0f} req/s  {rps / results['aiohttp_shared']:.2f}x aiohttp")
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
