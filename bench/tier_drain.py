"""How long a full tier pod takes to drain at SIGTERM: ``python -m bench.tier_drain [--tier C] [--mb 5] [--runs 3]``.

Runs what `make run` runs, on the real services: the web app (gunicorn, the platform's internal API) on
DATABASE_URL, and one tier node (``python -m tiernode``) with its object store on S3_ENDPOINT_URL. Fills the node to
its tier's max hot tenants (each with MB of history and a chat just written), sends SIGTERM and times the exit: the
drain flushes and closes every store, fetches every data key, seals and uploads every context blob and reports every
tenant cold. The figure sizes PERCOLATE_DRAIN_SECONDS and the tier pods' terminationGracePeriodSeconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.procs import free_port, stop, wait_http
from tiernode.loadtime import TOKEN  # the node's internal API calls (loadtime's _call) carry it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tier", default="C")
    parser.add_argument("--mb", type=int, default=5, help="history per tenant, MB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
    os.environ["PLATFORM_SERVICE_TOKEN"] = TOKEN
    import django

    django.setup()
    from django.core.management import call_command

    from core.audit import Actor
    from core.tier_policy import DEFAULT_TIER_POLICY
    from tenants.models import TenantState
    from tenants.services import tenant_provision
    from tiernode.loadtime import _call, build_tenant, local_node_env

    call_command("migrate", verbosity=0)
    import boto3

    bucket = f"bench-drain-{uuid.uuid4().hex[:10]}"  # the node's blobs, in a bucket of this run's own
    boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID", "percolate"),
        aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY", "percolate"),
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    hot = DEFAULT_TIER_POLICY[args.tier].max_hot_per_pod
    work = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    web_port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    web_log = (work / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "percolate_platform.wsgi", "-b", f"127.0.0.1:{web_port}", "-w", "2"],
        env=env,
        stdout=web_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    figures = []
    try:
        try:
            wait_http(web_port, "/healthz", timeout=180)
        except OSError:
            sys.exit(f"the web app did not answer: {(work / 'web.log').read_text()[-3000:]}")
        for run in range(args.runs):
            actor = Actor(label="bench:drain", ip_address="127.0.0.1")
            tenants = [
                tenant_provision(email=f"drain-{uuid.uuid4().hex[:10]}@example.com", tier=args.tier, actor=actor)
                for _ in range(hot)
            ]
            data_root = work / f"run{run}"
            for t in tenants:
                build_tenant(data_root, t.id, args.mb)
            port, public = free_port(), free_port()
            node_env = local_node_env(
                tier=args.tier, data_root=data_root, port=public, internal_port=port,
                PLATFORM_URL=f"http://127.0.0.1:{web_port}", PERCOLATE_DRAIN_SECONDS="600",
                S3_ACCESS_KEY_ID=os.environ.get("S3_ACCESS_KEY_ID", "percolate"),  # the platform's local defaults
                S3_SECRET_ACCESS_KEY=os.environ.get("S3_SECRET_ACCESS_KEY", "percolate"),
                S3_BUCKET=bucket,
            )  # fmt: skip
            node = subprocess.Popen([sys.executable, "-m", "tiernode"], env=node_env)
            try:
                wait_http(port, "/ready", timeout=120)
                for t in tenants:
                    generation = TenantState.objects.get(tenant=t).generation
                    status, body = _call(port, "POST", f"/internal/warm/{t.id}", {"generation": generation})
                    assert status == 200, body
                time.sleep(2)  # key prefetches settle, as on a pod that has been serving
                started = time.perf_counter()
                node.send_signal(signal.SIGTERM)
                node.wait(timeout=600)
                figures.append(time.perf_counter() - started)
            finally:
                if node.poll() is None:
                    node.kill()
            print(f"run {run + 1}: {hot} hot tier-{args.tier} tenants of {args.mb} MB drained in {figures[-1]:.2f} s")
    finally:
        stop(web)
    load = os.getloadavg()
    result = {
        "tier": args.tier,
        "hot_tenants": hot,
        "mb_per_tenant": args.mb,
        "drain_seconds_median": round(statistics.median(figures), 2),
        "drain_seconds_min": round(min(figures), 2),
        "drain_seconds_max": round(max(figures), 2),
        "loadavg_1m": load[0],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
