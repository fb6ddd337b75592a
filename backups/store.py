"""Backup objects in the `backups` store: names, the sealed manifest beside each dump, listing and retention.

    platform/backups/<name>.dump.sealed       sealed `pg_dump --format=custom` output
    platform/backups/<name>.manifest.sealed   sealed JSON: row counts, migrations, sizes, SHA-256 of the dump object

Names start with the UTC time (`20261207T021500123456Z-1a2b3c4d`), so they sort by age. The manifest is written last: a
dump without its manifest is an unfinished backup and is never restored. Everything a restore needs is here and in
the master key; the database, which is what a restore replaces, is not consulted.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from archival import objectstore
from backups import keys
from core import sealed

ALIAS = "backups"
PREFIX = "platform/backups/"
DUMP_SUFFIX = ".dump.sealed"
MANIFEST_SUFFIX = ".manifest.sealed"
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"  # microseconds: two backups in one second still sort by age


@dataclass(frozen=True)
class StoredBackup:
    name: str
    has_manifest: bool

    @property
    def created_at(self) -> datetime:
        return datetime.strptime(self.name.split("-", 1)[0], _TIME_FORMAT).replace(tzinfo=UTC)


def new_name(now: datetime) -> str:
    return f"{now.astimezone(UTC).strftime(_TIME_FORMAT)}-{secrets.token_hex(4)}"


def dump_key(name: str) -> str:
    return f"{PREFIX}{name}{DUMP_SUFFIX}"


def manifest_key(name: str) -> str:
    return f"{PREFIX}{name}{MANIFEST_SUFFIX}"


def _valid_name(name: str) -> bool:
    try:
        _ = StoredBackup(name, False).created_at
    except ValueError:
        return False
    return "/" not in name


def listing() -> list[StoredBackup]:
    """Every backup in the store, oldest first, with or without its manifest."""
    names: dict[str, bool] = {}
    for key in objectstore.list_keys(PREFIX, alias=ALIAS):
        base = key[len(PREFIX) :]
        for suffix, is_manifest in ((DUMP_SUFFIX, False), (MANIFEST_SUFFIX, True)):
            if base.endswith(suffix) and _valid_name(base[: -len(suffix)]):
                stem = base[: -len(suffix)]
                names[stem] = names.get(stem, False) or is_manifest
    return [StoredBackup(name, has) for name, has in sorted(names.items())]


def complete() -> list[StoredBackup]:
    return [b for b in listing() if b.has_manifest]


def write_manifest(name: str, manifest: dict[str, Any]) -> None:
    key_id, key = keys.current()
    blob = sealed.seal_bytes(
        data=json.dumps(manifest, sort_keys=True).encode(),
        tenant_id=keys.PLATFORM_ID,
        kind=sealed.KIND_CONTEXT,
        key_id=key_id,
        key=key,
    )
    objectstore.upload(manifest_key(name), io.BytesIO(blob), alias=ALIAS)


def read_manifest(name: str) -> dict[str, Any]:
    """The authenticated manifest of a backup (SealedError if it was altered or the master key is missing)."""
    buffer = io.BytesIO()
    with objectstore.open_reader(manifest_key(name), alias=ALIAS) as reader:
        while data := reader.read(1 << 20):
            buffer.write(data)
    plain = sealed.open_bytes(
        blob=buffer.getvalue(), tenant_id=keys.PLATFORM_ID, kind=sealed.KIND_CONTEXT, key_for=keys.key_for
    )
    manifest: dict[str, Any] = json.loads(plain)
    if manifest.get("name") != name:
        raise sealed.SealedError(f"manifest of {manifest.get('name')!r} stored under {name!r}")
    return manifest


def delete(name: str) -> None:
    """Remove both objects (the manifest first, so a half-deleted backup is never taken for a complete one)."""
    objectstore.delete(manifest_key(name), alias=ALIAS)
    objectstore.delete(dump_key(name), alias=ALIAS)
