"""What a restored database must show before anyone trusts it: the checks of the restore drill.

- every table of the manifest, with the same row count (the counts were taken in the dump's own snapshot);
- every migration the running code has is applied (the schema is at head for this release);
- a sample of tenant keys unwraps with the configured master key(s), and a sample of completed archives opens
  end to end (every chunk authenticated, size and SHA-256 as recorded) with keys read from the restored database.

Each check reads the restored database through its own psycopg connection and the live object store; nothing is
written anywhere.
"""

from __future__ import annotations

import uuid
from typing import Any, BinaryIO, cast

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap
from django.db.migrations.loader import MigrationLoader

from archival import objectstore
from backups import pg
from core import sealed
from percolate_platform.master_key import master_keyring


class _NullSink:
    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def row_counts(conn: Any, expected: dict[str, int]) -> dict[str, Any]:
    actual = pg.table_counts(conn, sorted(set(pg.user_tables(conn)) & set(expected)))
    missing = sorted(set(expected) - set(actual))
    wrong = {t: {"expected": n, "restored": actual[t]} for t, n in expected.items() if t in actual and actual[t] != n}
    return {
        "ok": not missing and not wrong,
        "tables": len(expected),
        "rows": sum(actual.values()),
        "missing_tables": missing,
        "mismatched": wrong,
    }


def migrations_at_head(conn: Any) -> dict[str, Any]:
    applied = {(a, n) for a, n in conn.execute("SELECT app, name FROM django_migrations")}
    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.graph.nodes)
    missing = sorted(f"{a}.{n}" for a, n in known - applied if not _replaced_and_applied(loader, (a, n), applied))
    unknown = sorted(f"{a}.{n}" for a, n in applied - known if a in loader.migrated_apps)
    return {"ok": not missing, "applied": len(applied), "missing": missing, "unknown_to_this_release": unknown}


def _replaced_and_applied(loader: MigrationLoader, node: tuple[str, str], applied: set[tuple[str, str]]) -> bool:
    migration = loader.disk_migrations.get(node)
    replaces = getattr(migration, "replaces", None) or []
    return bool(replaces) and all(tuple(r) in applied for r in replaces)


def _unwrap(row: tuple[Any, ...], keyring: dict[str, bytes]) -> bytes:
    key_id, wrapped, master_id = row
    master = keyring.get(master_id)
    if master is None:
        raise sealed.SealedError(f"key {key_id} is wrapped by master key {master_id}, which is not configured")
    try:
        return aes_key_unwrap(master, bytes(wrapped))
    except InvalidUnwrap as exc:
        raise sealed.SealedError(f"key {key_id} does not unwrap with master key {master_id}") from exc


def tenant_keys(conn: Any, *, sample: int) -> dict[str, Any]:
    keyring = master_keyring()
    rows = conn.execute(
        "SELECT key_id, wrapped_key, master_key_id FROM tenant_keys ORDER BY random() LIMIT %s", [sample]
    ).fetchall()
    failures = []
    for row in rows:
        try:
            _unwrap(row, keyring)
        except sealed.SealedError as exc:
            failures.append(str(exc))
    return {"ok": not failures, "sampled": len(rows), "failures": failures[:10]}


def archives(conn: Any, *, sample: int) -> dict[str, Any]:
    keyring = master_keyring()
    jobs = conn.execute(
        "SELECT tenant_id, manifest FROM archival_jobs WHERE job_type = 'archive' AND status = 'completed' "
        "AND manifest ? 'object_key' ORDER BY random() LIMIT %s",
        [sample],
    ).fetchall()
    failures = []
    for tenant_id, manifest in jobs:
        try:
            _open_archive(conn, uuid.UUID(str(tenant_id)), manifest, keyring)
        except (sealed.SealedError, objectstore.ObjectStoreError) as exc:
            failures.append(f"tenant {tenant_id} {manifest.get('object_key')}: {exc}")
    return {"ok": not failures, "sampled": len(jobs), "failures": failures[:10]}


def _open_archive(conn: Any, tenant_id: uuid.UUID, manifest: dict[str, Any], keyring: dict[str, bytes]) -> None:
    def key_for(key_id: str) -> bytes:
        row = conn.execute(
            "SELECT key_id, wrapped_key, master_key_id FROM tenant_keys WHERE key_id = %s AND tenant_id = %s",
            [key_id, tenant_id],
        ).fetchone()
        if row is None:
            raise sealed.SealedError(f"the restored database has no key {key_id} for this tenant")
        return _unwrap(row, keyring)

    sink = _NullSink()
    with objectstore.open_reader(manifest["object_key"]) as src:
        opened = sealed.open_stream(
            src=src, dst=cast(BinaryIO, sink), tenant_id=tenant_id, kind=sealed.KIND_ARCHIVE, key_for=key_for
        )
    if opened.sha256 != manifest.get("sha256") or opened.bytes_in != manifest.get("bytes_out"):
        raise sealed.SealedError("object differs from its job manifest (size or SHA-256)")


def run_all(conn: Any, manifest: dict[str, Any], *, sample: int) -> dict[str, Any]:
    results: dict[str, Any] = {
        "row_counts": row_counts(conn, manifest["tables"]),
        "migrations": migrations_at_head(conn),
        "tenant_keys": tenant_keys(conn, sample=sample),
        "archives": archives(conn, sample=sample),
    }
    results["ok"] = all(r["ok"] for r in results.values() if isinstance(r, dict))
    return results
