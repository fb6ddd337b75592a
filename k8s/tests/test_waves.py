"""Argo CD's order against readiness (k8s/waves.py): no object waits on a later wave, every database reader runs
new code only after the migrations, and the gateway's migration gate really waits for an unmigrated database."""

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from k8s import manifests, runtime, waves
from k8s.tests.conftest import database_url


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_no_wave_waits_on_a_later_wave(env: str) -> None:
    assert waves.check_wave_dependencies(env) == []


@pytest.mark.parametrize("env", manifests.OVERLAYS)
def test_every_database_reader_is_behind_the_migrations(env: str) -> None:
    assert waves.check_migration_gate(env) == []


def _gate_command(prod: list[manifests.Obj], tmp_path: Path, db_url: str, platform_secrets: Any) -> tuple[list, dict]:
    dep = manifests.find(prod, "Deployment", "gateway")
    init = manifests.pod_spec(dep)["initContainers"][0]
    env = runtime.local_env(runtime.container_env(prod, init), tmp_path, platform_secrets(db_url))
    command = [a.replace("python ", f"{runtime.sys.executable} ") for a in init["command"]]
    return command, {"PATH": runtime.os.environ["PATH"], **env}


@pytest.mark.django_db
def test_the_gateway_waits_for_migrations(prod: list[manifests.Obj], tmp_path: Path, platform_secrets: Any) -> None:
    command, env = _gate_command(prod, tmp_path, database_url(), platform_secrets)
    done = subprocess.run(command, cwd=manifests.REPO_ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]

    empty = f"h_gate_{uuid.uuid4().hex[:8]}"
    admin = database_url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty}"')
    try:
        command, env = _gate_command(prod, tmp_path, database_url(empty), platform_secrets)
        log = tmp_path / "gate.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(command, cwd=manifests.REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while b"waiting for migrations" not in log.read_bytes() and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
            time.sleep(1)
            still_waiting = proc.poll() is None  # it said so, and it did not go on to start the gateway
            proc.kill()
            proc.wait()
        assert still_waiting and b"waiting for migrations" in log.read_bytes(), log.read_text()[-2000:]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
