"""Connections: the optional psycopg pool; database calls from threads release (and repair) their connection."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

from percolate_platform.db_pool import configure_pool, db_call


def test_the_pool_is_configured_only_for_postgresql_and_replaces_persistent_connections() -> None:
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x", "CONN_MAX_AGE": 60}
    configure_pool(sqlite, max_size=4, min_size=1, timeout=10)
    assert "OPTIONS" not in sqlite and sqlite["CONN_MAX_AGE"] == 60
    pg = {"ENGINE": "django.db.backends.postgresql", "NAME": "x", "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
    configure_pool(pg, max_size=0, min_size=1, timeout=10)
    assert "OPTIONS" not in pg
    configure_pool(pg, max_size=4, min_size=1, timeout=10)
    assert pg["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 10}
    assert pg["CONN_MAX_AGE"] == 0
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOL_MIN_SIZE"):
        configure_pool(dict(pg), max_size=2, min_size=3, timeout=10)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def terminate(pid: int) -> None:
    """From a thread of its own (as an operator restarting the database would): end that backend."""

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def run_in_one_thread(calls):
    """Run the awaitables' factories in order on a loop whose executor has one thread (the same connection)."""

    async def main():
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        results = []
        for call in calls:
            try:
                results.append(await call())
            except DatabaseError as exc:
                results.append(exc)
        return results

    return asyncio.run(main())


@pytest.mark.django_db(transaction=True)
def test_a_thread_survives_a_database_restart_only_when_its_calls_release_the_connection() -> None:
    plain = sync_to_async(backend_pid, thread_sensitive=False)
    pids: list[int] = []

    def kill_last():
        async def run() -> None:
            terminate(pids[-1])

        return run()

    async def remember(call):
        pid = await call()
        pids.append(pid)
        return pid

    before, _, after = run_in_one_thread([lambda: remember(plain), kill_last, plain])
    assert isinstance(before, int) and isinstance(after, DatabaseError)  # the thread's connection stays dead

    released = db_call(backend_pid)
    first, _, second = run_in_one_thread([lambda: remember(released), kill_last, released])
    assert isinstance(second, int) and second != first  # a health check found it dead and the call reconnected
