"""The embedded default (SQLite, as `make run` uses it) under the burst that made it fail: 50 tier-pod state reports
and key fetches at once against the web app's internal API, served by runserver as in `make run`."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "dev-service-token"
TENANTS = 50
ROUNDS = 4

PROVISION = f"""
import json
from core.audit import Actor
from tenants.models import TenantState
from tenants.services import tenant_provision
ids = [str(tenant_provision(email=f"burst-{{i}}@example.com", tier="C", actor=Actor.system("test")).id)
       for i in range({TENANTS})]
print(json.dumps({{t: TenantState.objects.get(tenant_id=t).generation for t in ids}}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "S3_", "CELERY_"))}
    return {**env, "PERCOLATE_VAR_DIR": str(var_dir), "PLATFORM_SERVICE_TOKEN": TOKEN, "DJANGO_DEBUG": "true"}


class Pod:
    """A tier pod's platform client: one kept-alive connection, connection-level failures retried with a backoff (as
    tiernode's reporter does: runserver's listen backlog is 5), every HTTP answer taken as it is."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None) -> int:
        headers = {"Authorization": f"Service {TOKEN}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(10):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                response.read()
                return int(response.status)
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                time.sleep(0.05 * 2**attempt)
        raise AssertionError(f"{method} {path}: no connection to the web app")


def test_the_embedded_database_takes_a_burst_of_concurrent_writers(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    out = subprocess.run([*manage, "shell", "-c", PROVISION], cwd=REPO, env=env, check=True, capture_output=True)
    generations: dict[str, int] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    port = _free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while _probe(port) is None:
            assert server.poll() is None and time.monotonic() < deadline, "runserver did not start"
            time.sleep(0.1)

        def pod(tenant_id: str) -> list[int]:
            """What a tier pod does for one tenant while it serves a burst of chats: load, cool down, load again."""
            client, gen, statuses = Pod(port), generations[tenant_id], []
            for i in range(ROUNDS):
                state = "hot" if i % 2 == 0 else "warm"
                body = {"state": state, "generation": gen, "pod_id": "127.0.0.1:8203"}
                statuses.append(client.call("POST", f"/api/internal/tenants/{tenant_id}/state", body))
                statuses.append(client.call("GET", f"/api/internal/tenants/{tenant_id}/key"))
            client.conn.close()
            return statuses

        with ThreadPoolExecutor(max_workers=TENANTS) as pool:
            results = [status for statuses in pool.map(pod, generations) for status in statuses]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert len(results) == TENANTS * ROUNDS * 2
    assert set(results) == {200}, (sorted(set(results)), errors.decode()[-2000:])
    assert b"database is locked" not in errors


def _probe(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except (OSError, urllib.error.URLError):
        return None
