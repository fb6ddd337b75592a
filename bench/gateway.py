"""Gateway throughput and streaming, side by side with nginx in one run: `python -m bench.gateway`.

An nginx upstream answers a small body at once; nginx as a plain reverse proxy (keepalive, as many workers as the
gateway) and the gateway (authenticated tenants, tier routing, Redis rate limits; its cold path off, so the hot proxy
path is what is measured) both front it. wrk sends `POST /v1/chat/completions` with a small JSON body to each at 100
and 1,000 connections. Then 1,000 SSE streams (tier B, `"stream": true`) are held through the gateway for 60 s (one
event a second each). Last, the overload run (bench.gateway_overload): twice the gateway's c100 throughput offered
for 10 s, paced, while 1,000 streams stay open. Beside each proxy's throughput, the CPU its processes spent per
request: on a shared machine throughput falls with what the neighbours take, the CPU a request costs much less.
The last line is one JSON object. Targets: ratio_rps_c100 >= 0.3; zero stream errors and < 300 MB for the streams;
under overload a bounded admitted p99, no 5xx but 503, no stream event lost.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.gateway_overload import CHAT_BODY, overload_with_streams
from bench.gateway_streams import hold_streams
from bench.procs import free_port, peak_rss_mb, start, stop, tree_cpu_seconds, wait_http

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_GATEWAY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_bench_gateway")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

NGINX_CONF = """
worker_processes {workers};
pid {tmp}/nginx-{port}.pid;
error_log {tmp}/nginx-{port}.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body-{port}; proxy_temp_path {tmp}/proxy-{port};
  fastcgi_temp_path {tmp}/fcgi-{port}; uwsgi_temp_path {tmp}/uwsgi-{port}; scgi_temp_path {tmp}/scgi-{port};
  keepalive_requests 1000000;
  {upstream_block}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    {body}
  }}
}}
"""
# The upstream echoes the overload run's send time (sent as Idempotency-Key, echoed as X-Ratelimit-Bench-Sent: the
# gateway forwards only allow-listed headers, these names cross each way; absent, nothing is added).
UPSTREAM_BODY = (
    "location / { default_type application/json; add_header X-Ratelimit-Bench-Sent $http_idempotency_key; "
    "return 200 '{\"ok\":true}'; }"
)
PROXY_BODY = (
    'location / { proxy_pass http://pod; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }'
)

# The requests are formatted once per wrk thread (in init), not on every request: the load generator shares the two
# cores with what it measures, and the plain nginx runs use wrk's static request (the same POST, no token).
STATIC_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{CHAT_BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
WRK_SCRIPT = """
tokens = {{{tokens}}}
requests = {{}}
counter = 0
init = function(args)
  for i, token in ipairs(tokens) do
    requests[i] = wrk.format("POST", "/v1/chat/completions",
      {{["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}}, '{body}')
  end
end
request = function()
  counter = counter % #requests + 1
  return requests[counter]
end
"""


def ensure_tools() -> None:
    missing = [
        pkg
        for cmd, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"))
        if not shutil.which(cmd) and not Path(f"/usr/sbin/{cmd}").exists()
    ]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def nginx(tmp: str, port: int, workers: int, body: str, upstream: int = 0) -> subprocess.Popen[bytes]:
    conf = Path(tmp) / f"nginx-{port}.conf"
    block = f"upstream pod {{ server 127.0.0.1:{upstream}; keepalive 256; }}" if upstream else ""
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port, upstream_block=block, body=body))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    return start([binary, "-c", str(conf), "-g", "daemon off;"])


def prepare_tenants(count: int, tier: str = "A") -> list[str]:
    """A bench database with `count` tenants of `tier`; returns a platform token for each."""
    code = f"""
import django, json
django.setup()
from django.core.management import call_command
from django.conf import settings
call_command("migrate", verbosity=0)
from tenants.models import Tenant
from tenants.services import tenant_provision
from core.audit import Actor
from gateway.auth.tokens import mint_platform_token
prefix = "gwbench-" if "{tier}" == "A" else "gwbench-{tier.lower()}-"
have = list(Tenant.objects.filter(email__startswith=prefix, tier="{tier}").values_list("id", flat=True))
for i in range(len(have), {count}):
    have.append(tenant_provision(email=f"{{prefix}}{{i}}@example.com", tier="{tier}", actor=Actor.system("bench")).id)
print(json.dumps([mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=t, ttl_seconds=3600)
                  for t in have[:{count}]]))
"""
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            f"CREATE DATABASE {DB_URL.rsplit('/', 1)[1]}",
        ],
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=gateway_env({}), check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gateway_env(extra: dict[str, str]) -> dict[str, str]:
    policy = {tier: {"requests_per_minute": 10**9, "max_concurrent_streams": 10**6} for tier in "ABC"}
    return {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "percolate_platform.settings",
        "TIER_POLICY_JSON": json.dumps(policy),
        "LOG_LEVEL": "WARNING",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",  # forwarded headers are read, as behind production's load balancer
        "GATEWAY_COLD_PATH_ENABLED": "false",  # the hot proxy path is what is measured
        **extra,
    }


def wrk(port: int, connections: int, seconds: int, script: str) -> dict[str, float]:
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s", "-s", script]
    text = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}/v1/chat/completions"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    total = int(re.search(r"(\d+) requests in", text).group(1))
    if non2xx:  # throughput counts answered requests only: a quick 503 must not pass for capacity
        rps *= (total - int(non2xx.group(1))) / max(1, total)

    def pct(p: str) -> float:
        m = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", text)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "errors": errors,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "requests": total,
    }


def wrk_with_cpu(
    port: int, connections: int, seconds: int, script: str, proc: subprocess.Popen[bytes] | None
) -> dict[str, float]:
    """wrk against `port`, adding the CPU microseconds per request spent by `proc`'s process tree (the proxy)."""
    before = tree_cpu_seconds(proc.pid) if proc else 0.0
    result = wrk(port, connections, seconds, script)
    if proc:
        result["cpu_us_per_request"] = (tree_cpu_seconds(proc.pid) - before) * 1e6 / max(1, result["requests"])
    return result


def start_gateway(port: int, workers: int, *, pods: dict[str, int]) -> subprocess.Popen[bytes]:
    """The gateway as production runs it (`python -m gateway`), each tier in `pods` pointed at its upstream port."""
    cmd = [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    env = gateway_env({f"GATEWAY_PODS_{tier}": f"127.0.0.1:{upstream}" for tier, upstream in pods.items()})
    return start(cmd, env=env, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="gateway workers = nginx worker processes")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--stream-seconds", type=int, default=60)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--overload-seconds", type=int, default=10)
    parser.add_argument("--overload-connections", type=int, default=2000)
    args = parser.parse_args()
    ensure_tools()
    tokens = prepare_tenants(args.tenants)
    stream_tokens = prepare_tenants(args.tenants, "B")  # tier B is routed to the streaming upstream
    tmp = tempfile.mkdtemp(prefix="bench-gateway-")
    script, static = Path(tmp) / "tokens.lua", Path(tmp) / "static.lua"
    script.write_text(WRK_SCRIPT.format(tokens=", ".join(f'"{t}"' for t in tokens), body=CHAT_BODY))
    static.write_text(STATIC_SCRIPT)
    up, px, gw = free_port(), free_port(), free_port()
    procs = [nginx(tmp, up, 1, UPSTREAM_BODY), nginx(tmp, px, args.workers, PROXY_BODY, up)]
    gateway = start_gateway(gw, args.workers, pods={"A": up})
    procs.append(gateway)
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for port in (up, px, gw):
            wait_http(port, "/healthz" if port == gw else "/")
        wrk(gw, 50, 2, str(script))  # warm-up: connections, caches
        for connections in (100, 1000):
            for name, port, lua, proc in (
                ("direct", up, static, None),
                ("nginx", px, static, procs[1]),
                ("gateway", gw, script, gateway),
            ):
                results.setdefault(name, {})[f"c{connections}"] = wrk_with_cpu(
                    port, connections, args.seconds, str(lua), proc
                )
        stream_up = free_port()
        sse = start([sys.executable, "-m", "bench.gateway_streams", "--serve", str(stream_up)], cwd=ROOT)
        procs.append(sse)
        wait_http(stream_up, "/health")
        stop(gateway)
        gateway = start_gateway(gw, args.workers, pods={"A": up, "B": stream_up})
        procs.append(gateway)
        wait_http(gw, "/healthz")
        with peak_rss_mb(gateway.pid) as peak:
            stream_errors, events = hold_streams(gw, stream_tokens, args.streams, args.stream_seconds)
        stream_peak = peak()
        overload = overload_with_streams(
            gw,
            tokens,
            stream_tokens,
            rate=2 * results["gateway"]["c100"]["rps"],
            seconds=args.overload_seconds,
            connections=args.overload_connections,
            streams=args.streams,
            script_dir=Path(tmp),
        )
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'target':8} {'conns':>6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, runs in results.items():
        for conns, r in runs.items():
            print(
                f"{name:8} {conns[1:]:>6} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{int(r['errors'] + r['non_2xx']):>7}"
            )
    ratio = {c: results["gateway"][c]["rps"] / results["nginx"][c]["rps"] for c in ("c100", "c1000")}
    print(f"gateway/nginx throughput: c100 {ratio['c100']:.2f}, c1000 {ratio['c1000']:.2f}")
    cpu = {
        name: {c: round(results[name][c]["cpu_us_per_request"], 1) for c in ("c100", "c1000")}
        for name in ("nginx", "gateway")
    }
    print(f"CPU per request (us, the proxy's processes): nginx {cpu['nginx']}, gateway {cpu['gateway']}")
    print(
        f"{args.streams} SSE streams for {args.stream_seconds}s: {events} events, {stream_errors} errors, "
        f"gateway peak RSS {stream_peak:.0f} MB"
    )
    print(
        f"overload: offered {overload['offered_rps']} req/s (sent {overload['sent_rps']}) over "
        f"{args.overload_connections} connections for {args.overload_seconds}s with {args.streams} streams open: "
        f"answered {overload['achieved_rps']}/s, admitted {overload['admitted_rps']}/s at p50 "
        f"{overload['admitted_p50_ms']} ms, p99 {overload['admitted_p99_ms']} ms, "
        f"max {overload['admitted_max_ms']} ms; "
        f"shed {overload['shed_ratio']:.1%}, other 5xx {overload['5xx_other']}, socket errors "
        f"{overload['socket_errors']}; streams: {overload['stream_errors']} errors, "
        f"{overload['stream_events_lost']} events lost"
    )
    print(
        json.dumps(
            {
                "ratio_rps_c100": round(ratio["c100"], 3),
                "ratio_rps_c1000": round(ratio["c1000"], 3),
                "cpu_us_per_request": cpu,
                "p99_ms": {name: {c: round(r["p99_ms"], 2) for c, r in runs.items()} for name, runs in results.items()},
                "rps": {name: {c: round(r["rps"]) for c, r in runs.items()} for name, runs in results.items()},
                "errors": {
                    name: {c: int(r["errors"] + r["non_2xx"]) for c, r in runs.items()}
                    for name, runs in results.items()
                },
                "stream_errors": stream_errors,
                "stream_events": events,
                "stream_peak_rss_mb": round(stream_peak, 1),
                "overload_offered_rps": overload["offered_rps"],
                "overload_sent_rps": overload["sent_rps"],
                "overload_achieved_rps": overload["achieved_rps"],
                "overload_admitted_rps": overload["admitted_rps"],
                "overload_admitted_p50_ms": overload["admitted_p50_ms"],
                "overload_admitted_p99_ms": overload["admitted_p99_ms"],
                "overload_admitted_max_ms": overload["admitted_max_ms"],
                "overload_shed_ratio": overload["shed_ratio"],
                "overload_5xx_other": overload["5xx_other"],
                "overload_other_status": overload["other_status"],
                "overload_socket_errors": overload["socket_errors"],
                "overload_stream_errors": overload["stream_errors"],
                "overload_stream_events_lost": overload["stream_events_lost"],
            }
        )
    )


if __name__ == "__main__":
    main()
