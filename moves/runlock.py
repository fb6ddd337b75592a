"""One worker at a time per move: a redelivered task while the first still runs backs off (PostgreSQL advisory
lock; SQLite, the embedded default, runs tasks eagerly in one process)."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator

from django.db import connection

from core.errors import Conflict


@contextlib.contextmanager
def run_lock(move_id: uuid.UUID) -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    key = int.from_bytes(hashlib.sha256(f"tier-move:{move_id}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::bigint)", [key])
        (got,) = cursor.fetchone()
    if not got:
        raise Conflict(f"move {move_id} is already being run by another worker")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::bigint)", [key])
