"""Real platform processes for tests: a Celery worker or beat, a management command, on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def current_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database), for child processes."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    return f"postgres://{conf['USER']}@{conf['HOST']}:{conf['PORT'] or 5432}/{conf['NAME']}"


def child_env(*, embedded_broker: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process on the test database; `embedded_broker` (a var directory) drops REDIS_URL
    so the child uses the embedded default's filesystem broker under that directory."""
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PLATFORM_MASTER_KEY": settings.PLATFORM_MASTER_KEY.hex(),
        "DATABASE_CONN_MAX_AGE": "0",
        **extra,
    }
    if embedded_broker is not None:
        env.pop("REDIS_URL", None)
        env["PERCOLATE_VAR_DIR"] = str(embedded_broker)
    return env


def celery(args: list[str], env: dict[str, str], log: Path, *, app: str = "percolate_platform") -> subprocess.Popen:
    """Start `celery -A app <args>` with its output appended to `log`."""
    cmd = [sys.executable, "-m", "celery", "-A", app, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def worker_args(*extra: str) -> list[str]:
    return ["worker", "--pool=solo", "--concurrency=1", "--without-gossip", "--without-mingle", "-l", "info", *extra]


@contextmanager
def running(*procs: subprocess.Popen) -> Iterator[None]:
    """Kill the processes on the way out, whatever happened."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def manage(args: list[str], env: dict[str, str], *, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: Callable[[], str] | str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
