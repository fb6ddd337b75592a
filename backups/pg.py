"""PostgreSQL plumbing for backups: connection parameters, the client tools, scratch databases, table counts.

Everything here talks to PostgreSQL with its own connection (psycopg or `pg_dump`/`pg_restore`), never through
Django's, so a backup neither joins nor disturbs the caller's transaction.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg
from django.conf import settings
from psycopg import sql

from core.errors import InvalidInput, PlatformError

# Debian's postgresql-client puts version-specific binaries here; /usr/bin holds wrappers that pick one.
_VERSIONED_BINS = ("/usr/lib/postgresql/{}/bin",)


class ToolMissing(PlatformError):
    code = "tool_missing"


@dataclass(frozen=True)
class PgTarget:
    """Where a database is: enough for psycopg, pg_dump and pg_restore, without a password in any argv."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str = ""

    def conninfo(self, dbname: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": dbname or self.dbname,
        }
        if self.password:
            params["password"] = self.password
        if self.sslmode:
            params["sslmode"] = self.sslmode
        return params

    def environ(self) -> dict[str, str]:
        """Environment for the client tools (the password travels here, not on the command line)."""
        env = {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user}
        env["PGDATABASE"] = self.dbname
        if self.password:
            env["PGPASSWORD"] = self.password
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env

    def url(self) -> str:
        auth = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"postgres://{auth}@{self.host}:{self.port}/{quote(self.dbname, safe='')}{query}"

    def with_database(self, dbname: str) -> PgTarget:
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def same_database(self, other: PgTarget) -> bool:
        return (self.host, self.port, self.dbname) == (other.host, other.port, other.dbname)


def target_from_settings(settings_dict: dict[str, Any]) -> PgTarget:
    if "postgresql" not in settings_dict["ENGINE"]:
        raise InvalidInput("platform backups need PostgreSQL; the management database is not PostgreSQL")
    options = settings_dict.get("OPTIONS") or {}
    return PgTarget(
        host=settings_dict.get("HOST") or "localhost",
        port=int(settings_dict.get("PORT") or 5432),
        user=settings_dict.get("USER") or "postgres",
        password=settings_dict.get("PASSWORD") or "",
        dbname=settings_dict["NAME"],
        sslmode=str(options.get("sslmode", "")),
    )


def target_from_url(url: str) -> PgTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or not parts.path.strip("/"):
        raise InvalidInput(f"not a PostgreSQL database URL: {parts.scheme}://{parts.hostname or ''}{parts.path}")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return PgTarget(
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname=unquote(parts.path.lstrip("/")),
        sslmode=query.get("sslmode", ""),
    )


def tool(name: str) -> str:
    """Path of pg_dump / pg_restore: PG_BIN_DIR if set, else PATH, else Debian's versioned directories."""
    configured = getattr(settings, "PG_BIN_DIR", "")
    candidates = [str(Path(configured) / name)] if configured else []
    found = shutil.which(name)
    if found:
        candidates.append(found)
    for pattern in _VERSIONED_BINS:
        for version in ("17", "16", "15"):
            candidates.append(str(Path(pattern.format(version)) / name))
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    raise ToolMissing(f"{name} not found (install the PostgreSQL client matching the server, or set PG_BIN_DIR)")


@contextmanager
def connect(target: PgTarget, *, autocommit: bool = False, dbname: str | None = None) -> Iterator[psycopg.Connection]:
    with psycopg.connect(**target.conninfo(dbname), autocommit=autocommit, connect_timeout=10) as conn:
        yield conn


def user_tables(conn: psycopg.Connection) -> list[str]:
    """Ordinary tables of the public schema, by name."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    ).fetchall()
    return [row[0] for row in rows]


def table_counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def server_version(conn: psycopg.Connection) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else ""


def create_database(target: PgTarget) -> None:
    """Create ``target.dbname`` (from the server's maintenance database); it must not exist."""
    with connect(target, autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.dbname)))


def drop_database(target: PgTarget) -> None:
    with connect(target, autocommit=True, dbname="postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.dbname)))
