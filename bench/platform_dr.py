"""Disaster-recovery figures at scale: backup, restore drill and master key rotation of a 1M-tenant database.

    python -m bench.platform_dr [--tenants 1000000] [--rounds 2] [--archives 3] [--keep]

On PostgreSQL (`DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/percolate_dr_bench; the name must contain
"bench" or "scale", since the database is dropped and created again) and S3 (`S3_ENDPOINT_URL`, else the local
SeaweedFS; a bucket of its own, emptied and removed at the end). Steps:

1. migrate, seed ``--tenants`` tenants with states (COPY), give every tenant a data key wrapped by an "old" master
   key (COPY), archive ``--archives`` small tenants for real (their archives are what the drill opens), ANALYZE;
2. ``--rounds`` times: `backup_create` (pg_dump -Fc in a snapshot -> seal -> upload), then `restore_drill_run`
   into a scratch database `<name>_drill` (created, restored, checked, dropped);
3. master key rotation: PLATFORM_MASTER_KEY becomes a new key, the old one goes to PLATFORM_MASTER_KEY_PREVIOUS, and
   `master_key_rewrap` re-wraps every key; then a drill of a fresh backup proves the keys still unwrap.

The last line is one JSON object with every figure (seconds, bytes, rates) and their spread over the rounds.
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.db import drop_database, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/percolate_dr_bench"
OLD_MASTER = secrets.token_hex(32)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup(url: str, bucket: str, data_root: Path) -> None:
    os.environ.update(
        DATABASE_URL=url,
        DATABASE_CONN_MAX_AGE="86400",
        DJANGO_SETTINGS_MODULE="percolate_platform.settings",
        LOG_LEVEL="WARNING",
        S3_ENDPOINT_URL=os.environ.get("S3_ENDPOINT_URL") or "http://127.0.0.1:8333",
        S3_BUCKET=bucket,
        PLATFORM_MASTER_KEY=OLD_MASTER,
        TENANT_DATA_ROOT=str(data_root),
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    import django

    django.setup()


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID", "percolate"),
        aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY", "percolate"),
        config=Config(s3={"addressing_style": "path"}),
    )


def remove_bucket(bucket: str) -> None:
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


def seed_keys() -> tuple[int, float]:
    """A data key for every tenant, wrapped by the current (old) master key, loaded with COPY."""
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    from django.conf import settings
    from django.db import connection

    from tenants.keys import master_key_id

    started = time.perf_counter()
    master, master_id = settings.PLATFORM_MASTER_KEY, master_key_id()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenants")
        tenant_ids = [row[0] for row in cursor.fetchall()]
        raw = connection.connection
        with raw.cursor() as pg_cursor:
            copy_sql = "COPY tenant_keys (id, tenant_id, key_id, wrapped_key, master_key_id) FROM STDIN"
            with pg_cursor.copy(copy_sql) as copy:
                for tenant_id in tenant_ids:
                    wrapped = aes_key_wrap(master, os.urandom(32))
                    copy.write_row((os.urandom(16).hex(), tenant_id, f"tk-{os.urandom(12).hex()}", wrapped, master_id))
    return len(tenant_ids), time.perf_counter() - started


def archive_some(count: int) -> None:
    from archival import rocks
    from archival import services as archival
    from archival.selectors import tenant_data_dir
    from core.audit import Actor
    from tenants.models import State, TenantState

    actor = Actor.system("bench:platform_dr")
    states = TenantState.objects.filter(state=State.COLD).order_by("tenant_id")[:count]
    for state in states:
        rocks.build(tenant_data_dir(state.tenant_id), {f"k{i}".encode(): os.urandom(64) for i in range(500)})
        job = archival.archive_request(tenant_id=state.tenant_id, actor=actor, enqueue=False)
        archival.archive_run(job_id=job.id)


def one_round(drill_url: str) -> dict[str, Any]:
    from backups import drills, services
    from core.audit import Actor

    actor = Actor.system("bench:platform_dr")
    started = time.perf_counter()
    backup = services.backup_create(actor=actor)
    backup_s = time.perf_counter() - started
    started = time.perf_counter()
    drill = drills.restore_drill_run(into_url=drill_url, actor=actor, scratch=True, sample=20)
    drill_s = time.perf_counter() - started
    assert drill.checks["ok"], drill.checks
    return {
        "backup_s": round(backup_s, 2),
        "dump_bytes": backup.dump_bytes,
        "sealed_bytes": backup.sealed_bytes,
        "rows": sum(backup.manifest["tables"].values()),
        "restore_s": drill.restore_seconds,
        "drill_s": round(drill_s, 2),
        "checks_s": round(drill_s - (drill.restore_seconds or 0), 2),
        "archives_opened": drill.checks["archives"]["sampled"],
    }


def rotate() -> dict[str, Any]:
    from django.conf import settings

    from backups import rekey
    from core.audit import Actor

    settings.PLATFORM_MASTER_KEY_PREVIOUS = [settings.PLATFORM_MASTER_KEY]
    settings.PLATFORM_MASTER_KEY = secrets.token_bytes(32)
    started = time.perf_counter()
    result = rekey.master_key_rewrap(actor=Actor.system("bench:platform_dr"))
    seconds = time.perf_counter() - started
    assert result.remaining == 0
    settings.PLATFORM_MASTER_KEY_PREVIOUS = []  # from here on only the new key: the next drill proves the re-wrap
    return {
        "rewrapped": result.rewrapped,
        "rotate_s": round(seconds, 2),
        "rotate_keys_per_s": round(result.rewrapped / seconds),
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--archives", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database (the scratch one is always dropped)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = urlsplit(url).path.lstrip("/")
    if not any(word in name for word in ("bench", "scale")):
        parser.error(f"refusing to recreate database {name!r}: its name must contain 'bench' or 'scale'")
    bucket = f"percolate-dr-bench-{secrets.token_hex(4)}"
    drill_url = url.rsplit("/", 1)[0] + f"/{name}_drill"
    recreate_database(url)
    with tempfile.TemporaryDirectory(prefix="percolate-dr-") as tmp:
        setup(url, bucket, Path(tmp))
        s3_client().create_bucket(Bucket=bucket)
        try:
            figures = run(args, drill_url)
        finally:
            remove_bucket(bucket)
            drop_database(drill_url)
            if not args.keep:
                from django.db import connections

                connections.close_all()
                drop_database(url)
    print(json.dumps(figures))
    return 0


def run(args: argparse.Namespace, drill_url: str) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from bench.db import seed

    call_command("migrate", verbosity=0, interactive=False)
    log(f"seeding {args.tenants:,} tenants")
    _, seed_rate = seed(args.tenants)
    keys, keys_s = seed_keys()
    log(f"{keys:,} tenant keys in {keys_s:.1f} s; archiving {args.archives} tenants")
    archive_some(args.archives)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    rounds = []
    for i in range(args.rounds):
        rounds.append(one_round(drill_url))
        log(f"round {i + 1}: {rounds[-1]}")
    rotation = rotate()
    log(f"rotation: {rotation}")
    after = one_round(drill_url)
    log(f"after rotation: {after}")
    figures: dict[str, Any] = {
        "tenants": args.tenants,
        "seed_rate_per_s": round(seed_rate),
        "keys_seed_s": round(keys_s, 1),
    }
    for key in ("backup_s", "restore_s", "checks_s", "drill_s"):
        figures[key] = spread([r[key] for r in [*rounds, after]])
    figures.update(
        dump_bytes=rounds[0]["dump_bytes"],
        sealed_bytes=rounds[0]["sealed_bytes"],
        rows=rounds[0]["rows"],
        archives_opened=after["archives_opened"],
        **rotation,
    )
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
