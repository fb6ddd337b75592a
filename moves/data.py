"""Moving a tenant's RocksDB between tiers whose data roots differ (TENANT_DATA_ROOT_<tier>).

The copy goes to a scratch directory on the new root, every file's SHA-256 is checked against the source, then it is
renamed into place; the source is deleted only after the new tier has opened the copy (the move's clean-up step).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings

from archival import rocks
from core.errors import PlatformError

SCRATCH = ".moves"


class CopyFailed(PlatformError):
    code = "copy_failed"


def tier_root(tier: str) -> Path:
    return Path(settings.TIER_DATA_ROOTS.get(tier) or settings.TENANT_DATA_ROOT)


def roots_differ(from_tier: str, to_tier: str) -> bool:
    return tier_root(from_tier).resolve() != tier_root(to_tier).resolve()


def tenant_dir(tier: str, tenant_id: uuid.UUID | str) -> Path:
    return tier_root(tier) / str(tenant_id)


def digest(path: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under path."""
    out: dict[str, str] = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        sha = hashlib.sha256()
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
        out[str(file.relative_to(path))] = sha.hexdigest()
    return out


def _fsync_tree(path: Path) -> None:
    for item in [*path.rglob("*"), path]:
        fd = os.open(item, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def copy_tenant(
    *, tenant_id: uuid.UUID | str, from_tier: str, to_tier: str, move_id: uuid.UUID
) -> dict[str, int | str]:
    """Copy the tenant's directory to the new tier's root, verified; safe to re-run (the copy is redone whole)."""
    src = tenant_dir(from_tier, tenant_id)
    dst = tenant_dir(to_tier, tenant_id)
    if not src.exists():
        return {"files": 0, "bytes": 0, "source_digest": ""}
    before = source_digest(from_tier, tenant_id)  # taken first: a write after it shows as a change before the switch
    scratch = tier_root(to_tier) / SCRATCH / str(move_id)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, scratch)
    want, got = digest(src), digest(scratch)
    if want != got:
        shutil.rmtree(scratch, ignore_errors=True)
        raise CopyFailed(f"the copy of tenant {tenant_id} to tier {to_tier} does not match its source; nothing moved")
    _fsync_tree(scratch)
    if dst.exists():
        shutil.rmtree(dst)  # a leftover of an earlier attempt of this move: the source is still whole
    scratch.rename(dst)
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    return {"files": len(got), "bytes": size, "source_digest": before}


def source_digest(tier: str, tenant_id: uuid.UUID | str) -> str:
    """What the tenant's RocksDB holds (every key and value), not its files: opening a store rewrites its LOG,
    MANIFEST and OPTIONS files without changing a byte of data."""
    path = tenant_dir(tier, tenant_id)
    return rocks.digest(path).digest if path.exists() else ""


def remove_tenant(tier: str, tenant_id: uuid.UUID | str) -> None:
    shutil.rmtree(tenant_dir(tier, tenant_id), ignore_errors=True)
