"""Per-tenant metrics retention: how fast does pruning clear tenant_metrics, against the rate scrapes add rows?

    python -m bench.tenant_metrics [--rows 1000000] [--tenants 2000] [--keep]

On PostgreSQL (`DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/percolate_bench_metrics; the name must contain
"bench"; dropped and created again, dropped at the end unless --keep). Seeds `--tenants` tenants and `--rows` metric
rows spread evenly over the last 72 hours (COPY), ANALYZEs, then measures (median of --rounds, each on a fresh copy
of the rows older than the retention):

- `prune_tenant_metrics(older_than=48h)`: rows deleted per second (batched DELETEs on idx_tenant_metrics_recorded);
- one scrape's write: `store_samples` of 4 metrics x 500 hot tenants (a pod fleet's minute at small scale);
- the tenant page's chart query for one tenant over the last day.

The reference is the rate rows arrive at: at one scrape a minute, H hot tenants add 4 x H rows a minute (4 x H x 1,440
a day); the scrape task prunes every minute, so pruning keeps up while its rate exceeds that with a wide margin.
The last line is one JSON object.
"""

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from bench.db import drop_database, recreate_database, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/percolate_bench_metrics"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_rows(tenant_ids: list[uuid.UUID], rows: int, *, hours_from: float, hours_to: float) -> None:
    """COPY `rows` metric rows for the tenants, spread evenly between now-hours_from and now-hours_to."""
    from django.db import connection
    from django.utils import timezone

    now, span = timezone.now(), (hours_from - hours_to) * 3600
    names = ("requests", "memory_bytes", "load_seconds", "messages")
    sql = "COPY tenant_metrics (id, tenant_id, metric_name, metric_value, recorded_at) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for i in range(rows):
            at = now - timedelta(seconds=hours_to * 3600 + span * i / rows)
            copy.write_row((uuid.uuid4(), tenant_ids[i % len(tenant_ids)], names[i % 4], i % 1000, at))


def _timed(action: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def run(args: argparse.Namespace) -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from core.audit import Actor
    from overview.metrics_scrape import prune_tenant_metrics, store_samples
    from tenants.metric_charts import tenant_metric_series
    from tenants.models import Tenant
    from tenants.seeding import tenants_seed

    call_command("migrate", verbosity=0, interactive=False)
    tenants_seed(count=args.tenants, actor=Actor.system("bench:tenant_metrics"))
    ids = list(Tenant.objects.values_list("pk", flat=True))
    kept = args.rows * 2 // 3  # the last 48 hours of 72
    log(f"seeding {kept:,} rows within the retention")
    seed_rows(ids, kept, hours_from=47.9, hours_to=0)
    prune_rates, scrape_ms, chart_ms = [], [], []
    for round_ in range(args.rounds):
        old = args.rows - kept
        seed_rows(ids, old, hours_from=72, hours_to=48.1)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) tenant_metrics")
        seconds, deleted = _timed(lambda: prune_tenant_metrics(older_than=timedelta(hours=48)))
        assert deleted == old, (deleted, old)
        prune_rates.append(old / seconds)
        samples = [
            (ids[i % len(ids)], name, float(i))
            for i in range(500)
            for name in ("requests", "messages", "memory_bytes", "load_seconds")
        ]
        seconds, _ = _timed(partial(store_samples, samples, at=timezone.now()))
        scrape_ms.append(seconds * 1000)
        since = timezone.now() - timedelta(days=1)
        seconds, _ = _timed(partial(tenant_metric_series, tenant_id=ids[round_], since=since))
        chart_ms.append(seconds * 1000)
        log(f"  round {round_ + 1}/{args.rounds}: pruned {old:,} rows at {prune_rates[-1]:,.0f} rows/s")
    rate = statistics.median(prune_rates)
    per_day_per_hot = 4 * 1440
    result = {
        "rows_kept": kept,
        "rows_pruned_per_round": args.rows - kept,
        "prune_rows_per_s": round(rate),
        "prune_rows_per_s_spread": [round(min(prune_rates)), round(max(prune_rates))],
        "scrape_write_2000_rows_ms": round(statistics.median(scrape_ms), 1),
        "chart_query_ms": round(statistics.median(chart_ms), 2),
        "rows_per_day_per_hot_tenant": per_day_per_hot,
        # The scrape task prunes every minute, so pruning keeps pace continuously: rows arrive at 4 x H / 60 per second.
        "hot_tenants_kept_up_with_at_5pct_of_the_time": round(0.05 * rate * 60 / 4),
    }
    print(f"prune: {rate:,.0f} rows/s (spread {min(prune_rates):,.0f}-{max(prune_rates):,.0f})")
    print(f"one scrape's write of 2,000 rows: {result['scrape_write_2000_rows_ms']} ms")
    print(f"chart query, one tenant, last day: {result['chart_query_ms']} ms")
    print(
        f"reference: H hot tenants add 4 x H rows a minute ({per_day_per_hot:,} a day each); pruning 5% of the time "
        f"keeps up with {result['hot_tenants_kept_up_with_at_5pct_of_the_time']:,} hot tenants"
    )
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    import os

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if "bench" not in url.rsplit("/", 1)[-1]:
        parser.error("the database name must contain 'bench' (it is dropped)")
    recreate_database(url)
    setup_django(url)
    try:
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())
