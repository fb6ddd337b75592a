"""Database connections: the optional psycopg pool, and returning a thread's connection after a database call.

Django keeps one connection per thread and looks after it only at the start and end of a request (and Celery after a
task). The gateway calls the database from executor threads outside any request, so without `db_call` a thread kept
its connection forever: one connection per executor thread and process, and after a database restart or failover
every such thread failed on its dead connection until the process restarted. `db_call` runs the function, then
`close_old_connections()`: with the pool the connection goes back to it; with persistent connections a healthy one is
kept and a broken or expired one closed, so the next call reconnects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def configure_pool(database: dict[str, Any], *, max_size: int, min_size: int, timeout: float) -> None:
    """Turn Django's psycopg pool on for a PostgreSQL database when ``max_size`` > 0 (no-op for SQLite)."""
    if max_size <= 0 or "postgresql" not in database["ENGINE"]:
        return
    if not 0 <= min_size <= max_size:
        raise ImproperlyConfigured(f"DATABASE_POOL_MIN_SIZE must be between 0 and DATABASE_POOL_MAX_SIZE ({max_size})")
    database.setdefault("OPTIONS", {})["pool"] = {"min_size": min_size, "max_size": max_size, "timeout": timeout}
    database["CONN_MAX_AGE"] = 0  # a pooled connection goes back to the pool when Django closes it
    database["CONN_HEALTH_CHECKS"] = False  # the pool checks connections itself


def _closing(fn: Callable[P, R]) -> Callable[P, R]:
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return call


def db_call(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``fn`` run in a worker thread (like ``sync_to_async(fn, thread_sensitive=False)``), its connection released."""
    return sync_to_async(_closing(fn), thread_sensitive=False)
