"""The byte pipelines: `pg_dump` -> seal -> upload, and download -> open -> `pg_restore`, in bounded memory.

The dump runs inside an exported snapshot (`pg_export_snapshot`, REPEATABLE READ): the row counts recorded in the
manifest and the dump are of the same instant, so a restore can be checked table by table.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from archival import objectstore, tarball
from backups import keys, pg, store
from core import sealed
from core.errors import PlatformError

READ_CHUNK = 1 << 20


class BackupFailed(PlatformError):
    code = "backup_failed"


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, int]
    migrations: list[list[str]]
    server_version: str


@dataclass(frozen=True)
class Dumped:
    snapshot: Snapshot
    stats: sealed.SealStats
    pg_dump_version: str


def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    return out.stdout.strip()


def _stderr_tail(handle: IO[bytes]) -> str:
    handle.seek(0)
    text = handle.read().decode(errors="replace").strip()
    return " ".join(text.splitlines()[-3:])[-500:] or "no message"


@contextlib.contextmanager
def _process(
    argv: list[str], target: pg.PgTarget, **kwargs: Any
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """A client tool with its stderr in a temporary file; killed if the caller leaves early."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, env=target.environ(), stderr=errors, **kwargs)  # noqa: S603 (our argv)
        try:
            yield proc, errors
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _snapshot(conn: Any) -> tuple[str, Snapshot]:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    tables = pg.user_tables(conn)
    migrations = []
    if "django_migrations" in tables:
        migrations = [[a, n] for a, n in conn.execute("SELECT app, name FROM django_migrations ORDER BY app, name")]
    return str(row[0]), Snapshot(pg.table_counts(conn, tables), migrations, pg.server_version(conn))


def dump(
    target: pg.PgTarget, *, object_key: str, zstd_threads: int = 0, step: Callable[[str], None] = lambda s: None
) -> Dumped:
    """Dump ``target`` into the sealed object ``object_key`` of the backup store; BackupFailed if pg_dump fails."""
    binary = pg.tool("pg_dump")
    key_id, key = keys.current()
    with pg.connect(target) as conn:  # holds the snapshot until pg_dump is done
        snapshot_id, snap = _snapshot(conn)
        argv = [binary, "--format=custom", "--compress=0", f"--snapshot={snapshot_id}", "--no-password"]
        with _process(argv, target, stdout=subprocess.PIPE) as (proc, errors):
            assert proc.stdout is not None
            source = proc.stdout

            def produce(out: BinaryIO) -> sealed.SealStats:
                writer = sealed.SealWriter(
                    dst=out,
                    tenant_id=keys.PLATFORM_ID,
                    kind=sealed.KIND_ARCHIVE,
                    key_id=key_id,
                    key=key,
                    threads=zstd_threads,
                )
                with writer:
                    while data := source.read(READ_CHUNK):
                        writer.write(data)
                    if proc.wait() != 0:  # never seal the end of a dump that did not finish
                        raise BackupFailed(f"pg_dump failed (exit {proc.returncode}): {_stderr_tail(errors)}")
                assert writer.stats is not None
                return writer.stats

            stats, _ = tarball.piped(produce, lambda src: objectstore.upload(object_key, src, alias=store.ALIAS))
            step("dumped")
    return Dumped(snap, stats, tool_version(binary))


def restore(target: pg.PgTarget, *, object_key: str) -> sealed.OpenStats:
    """Open the sealed dump and feed it to `pg_restore` into ``target`` in one transaction (all or nothing)."""
    binary = pg.tool("pg_restore")
    argv = [
        binary,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        f"--dbname={target.dbname}",
    ]
    with _process(argv, target, stdin=subprocess.PIPE) as (proc, errors):
        assert proc.stdin is not None
        sink = proc.stdin
        try:
            with objectstore.open_reader(object_key, alias=store.ALIAS) as src:
                opened = sealed.open_stream(
                    src=src,
                    dst=cast(BinaryIO, sink),
                    tenant_id=keys.PLATFORM_ID,
                    kind=sealed.KIND_ARCHIVE,
                    key_for=keys.key_for,
                )
            sink.close()
        except BrokenPipeError:
            proc.wait()
            raise BackupFailed(f"pg_restore failed (exit {proc.returncode}): {_stderr_tail(errors)}") from None
        if proc.wait() != 0:
            raise BackupFailed(f"pg_restore failed (exit {proc.returncode}): {_stderr_tail(errors)}")
    return opened
