"""Management-database benchmark: do costs stay flat while tenants grow 100x?

    python -m bench.db [--tenants 1000000] [--small 10000] [--keep] [--explain]

On PostgreSQL (`DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/percolate_bench). Two databases side by side:
`<name>_small` with `--small` tenants and `<name>` with `--tenants` tenants, both seeded with states through
tenants.seeding (COPY) and VACUUM ANALYZEd. Both are dropped and created again at the start so each run is clean, and
dropped at the end unless `--keep`; as a safety net the name must contain "bench".

The two sizes are measured in alternating rounds (small, large, large, small, ...) so that background load on the
machine falls on both alike; each figure is the median over the rounds:

- the gateway's tier lookup `tenant_route` (p50 and p99 over 2,000 random existing ids per round);
- the admin tenant changelist, unfiltered, filtered `?tier__exact=A` and searched `?q=<email prefix of an existing
  tenant>` (server time through Django's test client, logged in as a superuser; median of several requests after a
  warm-up);
- the cold-tenant sweep `list(cold_tenants_idle(idle_days=60, limit=500))`;
- the staff overview page `/admin/overview/` (its snapshot computed afresh each request, not cached).

It prints every figure at both sizes with the ratio large/small and the seeding rate of the big seed; the last line is
one JSON object (`seed_rate_per_s`, `ratio_*`, and the raw figures). Targets: every ratio <= 2, seeding >= 20,000/s.
"""

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/percolate_bench"
SMALL = 10_000
LOOKUPS = 2_000
REQUESTS = 5
WARMUP = 2
COLD_RUNS = 7
ROUNDS = 5

FIGURES = [
    ("lookup_p50_ms", "tier lookup p50 (ms)", "ratio_lookup_p50"),
    ("lookup_p99_ms", "tier lookup p99 (ms)", "ratio_lookup_p99"),
    ("changelist_ms", "admin changelist (ms)", "ratio_changelist"),
    ("changelist_tier_ms", "admin changelist ?tier__exact=A (ms)", "ratio_changelist_tier"),
    ("changelist_search_ms", "admin changelist ?q=<email prefix> (ms)", "ratio_changelist_search"),
    ("cold_selector_ms", "cold_tenants_idle(60, limit=500) (ms)", "ratio_cold_selector"),
    ("overview_ms", "staff overview page /admin/overview/ (ms)", "ratio_overview"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the database ---------------------------------------------------------------------------------------------


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "pgsql", "psql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, "/postgres", parts.query, ""))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = _db_name(url)
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_db_name(url))))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    # One persistent connection for the whole run: a reconnect must not land inside a timed request.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "86400")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["OVERVIEW_REFRESH_SECONDS"] = "0"  # no cached snapshot: every overview request runs its queries
    import django
    from django.conf import settings

    django.setup()
    # Production-like request handling: no SQL logging by the debug cursor, no debug pages.
    settings.DEBUG = False


def use_database(name: str) -> None:
    """Point Django's default connection at another database (reconnects on the next query)."""
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = name


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) tenants, tenant_states")


# --- measurements ---------------------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def sample_ids(n: int) -> list[Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants ORDER BY random() LIMIT %s", [n])
        return [row[0] for row in cursor.fetchall()]


def measure_lookups(ids: list[Any]) -> dict[str, float]:
    """p50 and p99 of `tenant_route` over the ids (after a short warm-up), garbage collector paused while timing."""
    from tenants.selectors import tenant_route

    for tid in ids[:200]:
        tenant_route(tenant_id=tid)
    measured = ids[200:]
    random.shuffle(measured)
    timings = []
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        for tid in measured:
            began = clock()
            route = tenant_route(tenant_id=tid)
            timings.append(clock() - began)
            assert route is not None
    finally:
        gc.enable()
    return {"lookup_p50_ms": _ms(_percentile(timings, 0.50)), "lookup_p99_ms": _ms(_percentile(timings, 0.99))}


class QueryTimer:
    """Per-query timings of one request (django execute_wrapper)."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str, Any]] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - began, sql, params))


def measure_request(client: Any, path: str, *, explain: bool) -> tuple[float, int]:
    """Median server time of GET `path` (after a warm-up) and the number of queries it runs."""
    from django.db import connection

    for _ in range(WARMUP):
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")
    timings = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - began)
        assert response.status_code == 200
    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        client.get(path)
    if explain:
        explain_slowest(path, timer.queries)
    return statistics.median(timings), len(timer.queries)


def explain_slowest(path: str, queries: list[tuple[float, str, Any]]) -> None:
    """Each query's time, and EXPLAIN ANALYZE of the slowest query on the tenant tables."""
    from django.db import connection

    log(f"\n--- {path}: {len(queries)} queries ---")
    for seconds, sql, _ in queries:
        log(f"  {_ms(seconds):8.3f} ms  {' '.join(sql.split())[:150]}")
    candidates = [q for q in queries if q[1].lstrip().upper().startswith("SELECT") and '"tenants"' in q[1]]
    if not candidates:
        return
    seconds, sql, params = max(candidates, key=lambda q: q[0])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        for (line,) in cursor.fetchall():
            log(f"    {line}")


def measure_cold_selector() -> float:
    from tenants.selectors import cold_tenants_idle

    for _ in range(2):
        list(cold_tenants_idle(idle_days=60, limit=500))
    timings = []
    for _ in range(COLD_RUNS):
        began = time.perf_counter()
        rows = list(cold_tenants_idle(idle_days=60, limit=500))
        timings.append(time.perf_counter() - began)
        assert len(rows) == 500, len(rows)
    return statistics.median(timings)


def measure_once(target: "Target", search_prefix: str, *, explain: bool) -> dict[str, Any]:
    use_database(target.database)
    figures: dict[str, Any] = measure_lookups(target.ids)
    for key, path in [
        ("changelist_ms", "/admin/tenants/tenant/"),
        ("changelist_tier_ms", "/admin/tenants/tenant/?tier__exact=A"),
        ("changelist_search_ms", f"/admin/tenants/tenant/?q={search_prefix}"),
        ("overview_ms", "/admin/overview/"),
    ]:
        seconds, queries = measure_request(target.client, path, explain=explain)
        figures[key] = _ms(seconds)
        target.queries[key] = queries
    figures["cold_selector_ms"] = _ms(measure_cold_selector())
    return figures


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One database of the comparison."""

    database: str
    tenants: int
    client: Any = None
    ids: list[Any] = field(default_factory=list)
    queries: dict[str, int] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)


def seed(count: int) -> tuple[float, float]:
    from tqdm import tqdm

    from core.audit import Actor
    from tenants.seeding import tenants_seed

    with tqdm(total=count, unit="tenants", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        result = tenants_seed(count=count, actor=Actor.system("bench:db"), progress=bar.update)
    return result.seconds, result.rate_per_s


def prepare(target: Target) -> tuple[float, float]:
    """Migrate, seed, VACUUM ANALYZE; a superuser logged into a test client; sample ids for the lookups."""
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User

    use_database(target.database)
    log(f"migrating {target.database}")
    call_command("migrate", verbosity=0, interactive=False)
    log(f"seeding {target.tenants:,} tenants into {target.database}")
    seconds, rate = seed(target.tenants)
    vacuum_analyze()
    user = User.objects.create_superuser("bench", "bench@example.com", "bench-password-not-secret")
    target.client = Client()
    target.client.force_login(user)
    target.ids = sample_ids(LOOKUPS + 200)
    return seconds, rate


def _ratio(large: float, small: float) -> float | None:
    return round(large / small, 3) if small > 0 else None


def report(small: Target, large: Target, seed_info: dict[str, Any]) -> None:
    small_figures, large_figures = median_figures(small.rounds), median_figures(large.rounds)
    title = f"figure (median of {len(small.rounds)} rounds)"
    print(f"{title:<42}{small.tenants:>14,}{large.tenants:>14,}{'ratio':>9}")
    result: dict[str, Any] = {"seed_rate_per_s": round(seed_info["rate"])}
    for key, label, ratio_key in FIGURES:
        ratio = _ratio(large_figures[key], small_figures[key])
        result[ratio_key] = ratio
        flag = "" if ratio is not None and ratio <= 2 else "  > 2!"
        print(f"{label:<42}{small_figures[key]:>14.3f}{large_figures[key]:>14.3f}{ratio or float('nan'):>9.2f}{flag}")
    rate_flag = "" if seed_info["rate"] >= 20_000 else "  < 20,000!"
    print(
        f"seeding: {large.tenants:,} tenants in {seed_info['seconds']:.1f}s = {seed_info['rate']:,.0f} tenants/s"
        f"{rate_flag}"
    )
    result.update(
        {
            "tenants_small": small.tenants,
            "tenants_large": large.tenants,
            "seed_seconds": round(seed_info["seconds"], 3),
            "rounds": len(small.rounds),
            "small": small_figures,
            "large": large_figures,
            "queries_per_page": large.queries,
            "search_prefix": seed_info["search_prefix"],
        }
    )
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.db", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1_000_000, help="the large size (default 1,000,000)")
    parser.add_argument("--small", type=int, default=SMALL, help=f"the small size (default {SMALL:,})")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating measurement rounds (default {ROUNDS})")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases after the run")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each page's slowest query")
    args = parser.parse_args(argv)
    if args.small < 1000 or args.tenants <= args.small or args.rounds < 1:
        parser.error("need --small >= 1000, --tenants > --small and --rounds >= 1")

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not urlsplit(url).scheme.startswith(("postgres", "pgsql", "psql")):
        parser.error(f"bench.db runs on PostgreSQL; DATABASE_URL is {urlsplit(url).scheme}://")
    name = _db_name(url)
    if "bench" not in name:
        parser.error(f"refusing to drop and recreate database {name!r}: its name must contain 'bench'")
    small = Target(database=f"{name}_small", tenants=args.small)
    large = Target(database=name, tenants=args.tenants)
    urls = [_with_database(url, t.database) for t in (small, large)]

    for target_url in urls:
        log(f"recreating database {_db_name(target_url)}")
        recreate_database(target_url)
    setup_django(urls[0])
    from django.db import connections

    try:
        prepare(small)
        seconds, rate = prepare(large)
        n = random.randrange(args.small)
        search_prefix = f"seed-{n}-"  # one tenant per seeding run, so exactly one in each database
        log(f"measuring: {args.rounds} rounds alternating {small.database} and {large.database}")
        for i in range(args.rounds):
            order = (small, large) if i % 2 == 0 else (large, small)
            for target in order:
                target.rounds.append(measure_once(target, search_prefix, explain=args.explain and i == 0))
            log(f"  round {i + 1}/{args.rounds} done")
        report(small, large, {"seconds": seconds, "rate": rate, "search_prefix": search_prefix})
    finally:
        connections.close_all()
        if not args.keep:
            for target_url in urls:
                log(f"dropping database {_db_name(target_url)}")
                drop_database(target_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
