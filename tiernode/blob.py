"""Context blobs: a tenant's recent messages, key facts and preferences as JSON, sealed with the tenant's data key.

The sealed format is ``core.sealed`` (one format for archives and blobs); it is imported lazily so the node
starts without it. Object key: ``tenants/{tenant_id}/context.bin`` in the object store (a local directory, or S3
through boto3 with blocking calls run in a thread).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tiernode.config import NodeConfig

BLOB_VERSION = 1


def context_key(tenant_id: uuid.UUID) -> str:
    return f"tenants/{tenant_id}/context.bin"


def build_context(snapshot: dict[str, Any], *, generation: int, pod_id: str) -> bytes:
    doc = {"v": BLOB_VERSION, "generation": generation, "pod_id": pod_id, "written_at": time.time(), **snapshot}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def seal_context(data: bytes, *, tenant_id: uuid.UUID, key_id: str, key: bytes) -> bytes:
    from core import sealed

    return sealed.seal_bytes(data=data, tenant_id=tenant_id, kind=sealed.KIND_CONTEXT, key_id=key_id, key=key)


def open_context(blob: bytes, *, tenant_id: uuid.UUID, key_for: Callable[[str], bytes]) -> dict[str, Any]:
    """Open and parse a context blob (raises ``core.sealed.SealedError`` if it does not open)."""
    from core import sealed

    data = sealed.open_bytes(blob=blob, tenant_id=tenant_id, kind=sealed.KIND_CONTEXT, key_for=key_for)
    return json.loads(data)


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...


class LocalObjectStore:
    """A directory as the object store; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put_sync(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_sync(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.put_sync, key, data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self.get_sync, key)


class S3ObjectStore:
    """S3 (or SeaweedFS/MinIO) through boto3; boto3 is blocking, so every call runs in a thread."""

    def __init__(self, cfg: NodeConfig) -> None:
        import boto3  # imported only when S3 is configured

        self.bucket = cfg.s3_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=cfg.s3_endpoint_url,
            aws_access_key_id=cfg.s3_access_key_id or None,
            aws_secret_access_key=cfg.s3_secret_access_key or None,
            region_name=cfg.s3_region,
        )

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> bytes | None:
        def _get() -> bytes | None:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None

        return await asyncio.to_thread(_get)


def object_store_from_config(cfg: NodeConfig) -> ObjectStore:
    if cfg.s3_endpoint_url:
        return S3ObjectStore(cfg)
    assert cfg.object_store_root is not None
    return LocalObjectStore(cfg.object_store_root)
