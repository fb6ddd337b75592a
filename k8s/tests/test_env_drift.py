"""What the code reads from the environment and what the manifests set agree, per workload, apart from the listed
and reasoned exceptions in k8s/env-allowed.yaml (k8s/envdrift.py); and the settings a workload really gets."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from k8s import envdrift, manifests, runtime


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_code_and_manifests_agree_on_the_environment(env: str) -> None:
    problems = envdrift.check_env_drift(manifests.rendered_overlay(env))
    assert not problems, "\n".join(problems)


def test_every_allowance_still_excuses_something() -> None:
    objs = manifests.rendered_overlay("prod") + manifests.rendered_overlay("dev")
    assert envdrift.stale_allowances(objs) == []


def test_a_setting_nothing_reads_and_a_read_nothing_sets_are_reported() -> None:
    objs = manifests.rendered_overlay("prod")
    config = manifests.find(objs, "ConfigMap", "platform-config")
    config["data"]["PLATFORM_INTERNAL_URL"] = "http://web.percolate.svc:8000"
    del config["data"]["S3_REGION"]
    problems = envdrift.check_env_drift(objs)
    web = "Deployment/percolate/web container web"
    assert f"{web}: sets PLATFORM_INTERNAL_URL, which its code never reads" in problems
    assert f"{web}: its code reads S3_REGION, which the manifests never set" in problems


def test_the_gateway_in_the_cluster_starts_with_no_local_pods(
    prod: list[manifests.Obj], tmp_path: Path, platform_secrets: Any
) -> None:
    container = runtime.containers(manifests.find(prod, "Deployment", "gateway"))[0]
    env = runtime.local_env(runtime.container_env(prod, container), tmp_path, platform_secrets())
    code = (
        "import django; django.setup(); from django.conf import settings as s; import json; "
        "print(json.dumps([s.GATEWAY_TIER_PODS, s.OBJECT_STORE['OPTIONS']['region_name']]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=manifests.REPO_ROOT, env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    pods, region = json.loads(done.stdout)
    assert pods == {"A": [], "B": [], "C": []}
    assert region == "eu-west-1"


def test_worker_zstd_threads_fit_its_cpu_limit(prod: list[manifests.Obj]) -> None:
    container = runtime.containers(manifests.find(prod, "Deployment", "worker"))[0]
    threads = int(runtime.container_env(prod, container)["ARCHIVE_ZSTD_THREADS"])
    assert 1 <= threads <= int(container["resources"]["limits"]["cpu"])
