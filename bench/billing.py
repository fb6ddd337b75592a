"""Stripe webhooks under replay: 10,000 events for 1,000 customers, each delivered one to three times, shuffled, from
several concurrent senders, through the running endpoint and a real Celery worker, beside a bare view.

    python -m bench.billing [--customers 1000] [--senders 8] [--seed 14]

One database of its own (`BENCH_BILLING_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/
percolate_billing_bench, recreated and dropped), Redis at `REDIS_URL` (default db 14). Processes: gunicorn with 3
sync workers (as k8s/platform/web.yaml) on `bench.billing_site` (the platform's URLs plus /bench/bare/, a view that
only inserts the raw body), one Celery worker (prefork, concurrency 2) and three tier nodes, so the tier moves billing
asks for really run (fence, switch, warm on the new tier's pod).

Each customer's ten events, in Stripe's order: checkout, subscription created (price P1), invoice paid, updated (P2),
payment failed, updated (past_due), invoice paid, updated (cancel at period end), updated (P3), then invoice paid or
(one customer in ten) subscription deleted. Every delivery is signed afresh with stripe-python's scheme. Every delivery
goes to the bare view and to the webhook (in random order, from the same sender), so both meet the same load; then
the bench waits until every event is processed and no tier move runs. `events_per_s` is unique events over the time
from the first request to the drained state. `mismatches` counts subscriptions whose row (status, price, cancel at
period end, payment standing) or whose tenant's tier differs from what the final Stripe state says. The last line is
JSON.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.db import drop_database, recreate_database
from bench.procs import free_port, start, stop, wait_http
from billing import shapes

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_BILLING_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/percolate_billing_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "whsec_bench_billing_0123456789"
PRICES = {"price_bench_a": "A", "price_bench_b": "B", "price_bench_c": "C"}
LIVE = ("active", "trialing", "past_due")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def env(data_root: Path, pods: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "bench.billing_site",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "STRIPE_WEBHOOK_SECRETS": SECRET,
        "STRIPE_PRICE_TIERS": json.dumps(PRICES),
        "STRIPE_TIER_FOLLOW_SECONDS": "1",
        "MOVE_STALLED_AFTER_SECONDS": "30",
        "TENANT_DATA_ROOT": str(data_root),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        **{f"GATEWAY_PODS_{tier}": pod for tier, pod in pods.items()},
        **{f"GATEWAY_DNS_{tier}": "" for tier in "ABC"},
    }


def customer_events(n: int, rnd: random.Random, start_at: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One customer's ten events in Stripe's order, and the final state they describe."""
    customer, sub, email = f"cus_bench{n:06d}", f"sub_bench{n:06d}", f"bench-{n}@example.com"
    p1, p2, p3 = (rnd.choice(list(PRICES)) for _ in range(3))
    clock = [start_at]
    count = [0]

    def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        clock[0] += 10
        count[0] += 1
        return shapes.event(kind, obj, event_id=f"evt_bench{n:06d}_{count[0]:02d}", created=clock[0])

    def subscription(kind: str, price: str, status: str = "active", cancel: bool = False) -> dict[str, Any]:
        obj = shapes.subscription(
            subscription_id=sub,
            customer=customer,
            status=status,
            price=price,
            period_start=start_at,
            period_end=start_at + 30 * 86_400,
            cancel_at_period_end=cancel,
        )
        return event(f"customer.subscription.{kind}", obj)

    def invoice(paid: bool) -> dict[str, Any]:
        invoice_id = f"in_bench{n:06d}_{count[0]:02d}"
        obj = shapes.invoice(invoice_id=invoice_id, customer=customer, subscription=sub, paid=paid, created=clock[0])
        return event("invoice.paid" if paid else "invoice.payment_failed", obj)

    checkout = shapes.checkout_session(
        session_id=f"cs_test_bench{n:06d}", customer=customer, subscription=sub, email=email, created=start_at
    )
    deleted = rnd.random() < 0.1
    events = [
        event("checkout.session.completed", checkout),
        subscription("created", p1),
        invoice(True),
        subscription("updated", p2),
        invoice(False),
        subscription("updated", p2, status="past_due"),
        invoice(True),
        subscription("updated", p2, cancel=True),
        subscription("updated", p3),
        subscription("deleted", p3, status="canceled") if deleted else invoice(True),
    ]
    status = "canceled" if deleted else "active"
    final = {"status": status, "price": p3, "cancel": False, "tier": PRICES[p3] if status in LIVE else "C"}
    return events, {"sub": sub, **final}


def send_all(
    requests: list[tuple[str, bytes]], senders: int, sign: Callable[[bytes], str]
) -> tuple[dict[str, list[float]], float, int]:
    """POST every (url, body) once from `senders` threads; (latencies in ms by URL, seconds, non-2xx answers)."""
    latencies: dict[str, list[float]] = {}
    errors = [0]
    lock = threading.Lock()
    chunks = [requests[i::senders] for i in range(senders)]

    def sender(chunk: list[tuple[str, bytes]]) -> None:
        mine: dict[str, list[float]] = {}
        for url, body in chunk:
            headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body)}
            request = urllib.request.Request(url, data=body, headers=headers)
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
                    ok = response.status == 200
            except urllib.error.HTTPError:
                ok = False
            mine.setdefault(url, []).append((time.perf_counter() - t0) * 1000)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            for url, values in mine.items():
                latencies.setdefault(url, []).extend(values)

    threads = [threading.Thread(target=sender, args=(chunk,)) for chunk in chunks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0, errors[0]


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=1000)[int(q * 10) - 1], 2) if len(values) > 1 else 0.0


def pending(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    events = conn.execute(
        "SELECT count(*) FROM billing_events WHERE processing_status IN ('received', 'failed')"
    ).fetchone()
    moves = conn.execute("SELECT count(*) FROM tenant_moves WHERE finished_at IS NULL").fetchone()
    return (events[0] if events else 0), (moves[0] if moves else 0)


def mismatches(conn: psycopg.Connection[Any], expected: list[dict[str, Any]]) -> list[str]:
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT s.stripe_subscription_id, s.status, s.stripe_price_id, s.cancel_at_period_end,"
            " s.payment_failed_at IS NULL, t.tier FROM subscriptions s JOIN tenants t ON t.id = s.tenant_id"
        ).fetchall()
    }
    wrong = []
    for want in expected:
        got = rows.get(want["sub"])
        if got != (want["status"], want["price"], want["cancel"], True, want["tier"]):
            wrong.append(f"{want['sub']}: got {got}, want {want}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)
    start_at = int(time.time()) - 2 * 86_400
    events, expected = [], []
    for n in range(args.customers):
        evs, final = customer_events(n, rnd, start_at + n)
        events += evs
        expected.append(final)
    deliveries = [shapes.body(e) for e in events for _ in range(rnd.randint(1, 3))]
    rnd.shuffle(deliveries)
    log(f"{len(events)} events for {args.customers} customers, {len(deliveries)} deliveries")

    recreate_database(DB_URL)
    procs: list[subprocess.Popen[bytes]] = []
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-billing-") as tmp:
            data_root = Path(tmp) / "tenant-data"
            data_root.mkdir()
            nodes = {}
            for tier in "ABC":
                public, internal = free_port(), free_port()
                node_env = {k: v for k, v in os.environ.items() if not k.startswith("S3_") and k != "PLATFORM_URL"}
                node_env.update(
                    PERCOLATE_TENANT_TIER=tier,
                    PORT=str(public),
                    INTERNAL_PORT=str(internal),
                    HOST="127.0.0.1",
                    POD_ID=f"127.0.0.1:{internal}",
                    TENANT_DATA_ROOT=str(data_root),
                    OBJECT_STORE_ROOT=str(Path(tmp) / "objects"),
                    PLATFORM_SERVICE_TOKEN="dev-service-token",
                    LOG_LEVEL="warning",
                )
                procs.append(start([sys.executable, "-m", "tiernode"], env=node_env, cwd=ROOT))
                wait_http(internal, "/ready")
                nodes[tier] = f"127.0.0.1:{public}/{internal}"
            base = env(data_root, nodes)
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=base, check=True)
            with psycopg.connect(DB_URL, autocommit=True) as conn:
                conn.execute("CREATE TABLE bench_bare_bodies (id bigserial PRIMARY KEY, body bytea NOT NULL)")
            subprocess.run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], check=False, capture_output=True)
            port = free_port()
            procs.append(
                start(
                    [
                        *[sys.executable, "-m", "gunicorn", "percolate_platform.wsgi", "--workers", "3"],
                        *["--bind", f"127.0.0.1:{port}", "--worker-tmp-dir", "/tmp", "--log-level", "warning"],
                    ],
                    env={**base, "DJANGO_SETTINGS_MODULE": "bench.billing_site"},
                    cwd=ROOT,
                )
            )
            wait_http(port, "/healthz")
            worker_cmd = [sys.executable, "-m", "celery", "-A", "percolate_platform", "worker", "-c", "2"]
            worker_cmd += ["--without-gossip", "--without-mingle", "-l", "WARNING"]
            procs.append(start(worker_cmd, env=base, cwd=ROOT))

            def sign(body: bytes) -> str:
                return shapes.signature_header(body, SECRET)

            # Each delivery goes to both, in random order, so the bare view and the webhook meet the same load
            # (the worker processing, the moves, the other senders) at the same moments.
            bare_url, hook_url = (
                f"http://127.0.0.1:{port}/bench/bare/",
                f"http://127.0.0.1:{port}/billing/stripe/webhook/",
            )
            requests = []
            for body in deliveries:
                pair = [(bare_url, body), (hook_url, body)]
                rnd.shuffle(pair)
                requests += pair
            t0 = time.perf_counter()
            latencies, hook_s, errors = send_all(requests, args.senders, sign)
            hook, bare = latencies[hook_url], latencies[bare_url]
            log(f"sent {len(requests)} requests in {hook_s:.1f} s, {errors} not 200")
            log(f"bare p50 {pct(bare, 50)} p99 {pct(bare, 99)} ms; webhook p50 {pct(hook, 50)} p99 {pct(hook, 99)} ms")
            with psycopg.connect(DB_URL, autocommit=True) as conn:
                deadline = time.perf_counter() + args.drain_timeout
                while True:
                    events_left, moves_left = pending(conn)
                    if events_left == 0 and moves_left == 0:
                        wrong = mismatches(conn, expected)
                        if not wrong or time.perf_counter() > deadline:
                            break
                    elif time.perf_counter() > deadline:
                        wrong = mismatches(conn, expected)
                        break
                    time.sleep(0.5)
                drained = time.perf_counter()
                stored = conn.execute("SELECT count(*) FROM billing_events").fetchone()
                moves = conn.execute("SELECT status, count(*) FROM tenant_moves GROUP BY status").fetchall()
            for line in wrong[:10]:
                log(f"mismatch {line}")
            p99, bare_p99 = pct(hook, 99), pct(bare, 99)
            result = {
                "customers": args.customers,
                "events": len(events),
                "deliveries": len(deliveries),
                "senders": args.senders,
                "stored_events": stored[0] if stored else 0,
                "ack_p50_ms": pct(hook, 50),
                "ack_p99_ms": p99,
                "bare_p50_ms": pct(bare, 50),
                "bare_p99_ms": bare_p99,
                "ratio_ack_p99_vs_bare": round(p99 / bare_p99, 2) if bare_p99 else None,
                "requests_per_s": round(len(requests) / hook_s, 1),
                "events_per_s": round(len(events) / (drained - t0), 1),
                "drain_seconds": round(drained - t0 - hook_s, 1),
                "non_2xx": errors,
                "tier_moves": dict(moves),
                "mismatches": len(wrong),
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
            }
    finally:
        for proc in reversed(procs):
            stop(proc)
        drop_database(DB_URL)
    print(json.dumps(result))
    return 0 if result["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
