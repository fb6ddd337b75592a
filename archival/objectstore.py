"""The object store: a thin streaming layer over ``storages["objects"]`` (a local directory or S3).

Nothing here holds a whole object in memory: uploads read from a file-like (S3: boto3 multipart with a bounded
number of parts in flight; filesystem: temporary file, fsync, atomic rename), downloads write to a file-like.
Failures of the store itself (network, S3 errors, disk) are raised as :class:`ObjectStoreError`, which callers may
retry.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.files.storage import Storage, storages

COPY_CHUNK = 1 << 20
MULTIPART_CHUNK = 8 << 20
MULTIPART_CONCURRENCY = 4


class ObjectStoreError(Exception):
    """The object store failed (unreachable, refused, I/O error): transient as far as callers know."""


class ObjectMissing(ObjectStoreError):
    """The object does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    sha256: str


def archive_key(tenant_id: uuid.UUID | str, job_id: uuid.UUID | str) -> str:
    return f"tenants/{tenant_id}/archives/{job_id}.sealed"


def context_key(tenant_id: uuid.UUID | str) -> str:
    return f"tenants/{tenant_id}/context.bin"


def get_storage(alias: str = "objects") -> Storage:
    """The store: ``objects`` (tenant archives, context blobs) unless another STORAGES alias is named (backups)."""
    return storages[alias]


def _is_s3(storage: Storage) -> bool:
    return hasattr(storage, "bucket") and hasattr(storage, "_normalize_name")


def bucket_name() -> str | None:
    storage = get_storage()
    return getattr(storage, "bucket_name", None) if _is_s3(storage) else None


def describe() -> str:
    storage = get_storage()
    if _is_s3(storage):
        return f"s3://{storage.bucket_name} at {storage.endpoint_url}"  # type: ignore[attr-defined]  # S3Storage's own attribute (checked by _is_s3); get_storage() is typed as Storage
    return f"file://{storage.location}"  # type: ignore[attr-defined]  # FileSystemStorage's own attribute


@contextlib.contextmanager
def _errors(what: str, key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ObjectStoreError:
        raise
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ObjectMissing(f"{what} {key}: object not found") from exc
        raise ObjectStoreError(f"{what} {key} failed: {exc}") from exc
    except FileNotFoundError as exc:
        raise ObjectMissing(f"{what} {key}: object not found") from exc
    except (BotoCoreError, OSError) as exc:
        raise ObjectStoreError(f"{what} {key} failed: {exc}") from exc


def upload(key: str, src: BinaryIO, *, alias: str = "objects") -> None:
    """Store everything ``src`` yields under ``key``, replacing any previous object; bounded memory."""
    storage = get_storage(alias)
    with _errors("upload", key):
        if _is_s3(storage):
            from boto3.s3.transfer import TransferConfig

            config = TransferConfig(
                multipart_threshold=MULTIPART_CHUNK,
                multipart_chunksize=MULTIPART_CHUNK,
                max_concurrency=MULTIPART_CONCURRENCY,
                use_threads=True,
            )
            storage.bucket.upload_fileobj(src, storage._normalize_name(key), Config=config)  # type: ignore[attr-defined]  # S3Storage's own
            return
        path = Path(storage.path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = part_path(path)
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):  # random names of older versions
            stale.unlink(missing_ok=True)
        # One name per key: a worker killed mid-upload leaves this file, and the re-run truncates and replaces it
        # (one writer per key at a time: keys are per job, and a job runs under its run lock).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    data = src.read(COPY_CHUNK)
                    if not data:
                        break
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def part_path(path: Path) -> Path:
    """Where a file-system upload of ``path`` is written before the atomic rename."""
    return path.with_name(f".{path.name}.part")


@contextlib.contextmanager
def open_reader(key: str, *, alias: str = "objects") -> Iterator[BinaryIO]:
    """A streaming reader of the stored object (``read(n)``)."""
    storage = get_storage(alias)
    with _errors("download", key):
        if _is_s3(storage):
            body = storage.bucket.Object(storage._normalize_name(key)).get()["Body"]  # type: ignore[attr-defined]  # S3Storage's own
            try:
                yield body
            finally:
                body.close()
        else:
            with open(storage.path(key), "rb") as handle:
                yield handle


def chunks(key: str) -> Iterator[bytes]:
    """The stored object, streamed in bounded chunks."""
    with open_reader(key) as reader:
        while data := reader.read(COPY_CHUNK):
            yield data


def download(key: str, dst: BinaryIO) -> int:
    total = 0
    for data in chunks(key):
        dst.write(data)
        total += len(data)
    return total


def stat(key: str) -> ObjectInfo:
    """Size and SHA-256 of the stored object, read back from the store (streamed)."""
    digest = hashlib.sha256()
    size = 0
    for data in chunks(key):
        digest.update(data)
        size += len(data)
    return ObjectInfo(size, digest.hexdigest())


def exists(key: str, *, alias: str = "objects") -> bool:
    storage = get_storage(alias)
    with _errors("exists", key):
        return bool(storage.exists(key))


def size(key: str) -> int:
    storage = get_storage()
    with _errors("size", key):
        return int(storage.size(key))


def delete(key: str, *, alias: str = "objects") -> None:
    storage = get_storage(alias)
    with _errors("delete", key):
        storage.delete(key)


def list_keys(prefix: str, *, alias: str = "objects") -> list[str]:
    """Object keys under ``prefix`` (a directory-like path ending in '/')."""
    storage = get_storage(alias)
    with _errors("list", prefix):
        if _is_s3(storage):
            base = storage._normalize_name(prefix)  # type: ignore[attr-defined]  # S3Storage's own
            location = storage._normalize_name("")  # type: ignore[attr-defined]  # S3Storage's own
            return sorted(
                obj.key[len(location) :].lstrip("/") if location else obj.key
                for obj in storage.bucket.objects.filter(Prefix=base)  # type: ignore[attr-defined]  # S3Storage's own
            )
        root = Path(storage.path(prefix))
        if not root.exists():
            return []
        base_path = Path(storage.path(""))
        return sorted(
            str(p.relative_to(base_path)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part")
        )


def apply_lifecycle(rules: dict, *, alias: str = "objects") -> dict | None:
    """Put the bucket lifecycle configuration ``rules`` on the store's bucket and return what the store reads back
    (None for a file-system store, which has no multipart uploads)."""
    storage = get_storage(alias)
    if not _is_s3(storage):
        return None
    bucket = storage.bucket_name  # type: ignore[attr-defined]  # S3Storage's own attribute (checked by _is_s3); get_storage() is typed as Storage
    with _errors("lifecycle", bucket):
        client = storage.connection.meta.client  # type: ignore[attr-defined]  # S3Storage's own
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
        got = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    return {"Rules": got.get("Rules", [])}
