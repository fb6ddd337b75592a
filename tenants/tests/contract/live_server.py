"""The production web command (gunicorn, DEBUG off, as in k8s/platform/web.yaml) on a free local port, against the
test database, for tests that need the app behind a real socket (the schemathesis contract run)."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]
SERVICE_TOKEN = "contract-run-service-token-" + secrets.token_hex(8)
# Behind the load balancer every request arrives as HTTPS (SECURE_SSL_REDIRECT is on with DEBUG off).
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https"}


@dataclass(frozen=True)
class LiveServer:
    url: str
    service_token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        request = urllib.request.Request(f"{url}/healthz", headers=FORWARDED_HTTPS)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, or timed out while the workers boot (URLError is an OSError)
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer /healthz in time")


@contextmanager
def production_server() -> Iterator[LiveServer]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_hex(32),
        "PLATFORM_MASTER_KEY": settings.PLATFORM_MASTER_KEY.hex(),
        "PLATFORM_SERVICE_TOKEN": SERVICE_TOKEN,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "STRIPE_WEBHOOK_SECRETS": "whsec_contract_" + secrets.token_hex(8),
    }
    command = [sys.executable, "-m", "gunicorn", "percolate_platform.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--worker-tmp-dir", "/tmp", "--forwarded-allow-ips", "*"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield LiveServer(url=url, service_token=SERVICE_TOKEN)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
