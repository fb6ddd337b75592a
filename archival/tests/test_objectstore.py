"""The object store against the real SeaweedFS and the filesystem backend."""

import hashlib
import io
import os

import pytest

from archival import objectstore


def test_keys() -> None:
    assert objectstore.archive_key("t", "j") == "tenants/t/archives/j.sealed"
    assert objectstore.context_key("t") == "tenants/t/context.bin"


@pytest.mark.parametrize("size", [0, 1000, 20 << 20])
def test_upload_stat_download_delete(object_store, size: int) -> None:
    if size > 1 << 20 and object_store == "fs":
        size = 3 << 20
    data = os.urandom(size)
    key = f"tenants/t-{size}/archives/obj.sealed"

    class OneWay:  # not seekable: forces true streaming (multipart on S3 for the big one)
        def __init__(self) -> None:
            self.buf = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.buf.read(n)

    objectstore.upload(key, OneWay())
    assert objectstore.exists(key)
    assert objectstore.size(key) == size
    info = objectstore.stat(key)
    assert (info.size, info.sha256) == (size, hashlib.sha256(data).hexdigest())
    out = io.BytesIO()
    assert objectstore.download(key, out) == size and out.getvalue() == data
    assert key in objectstore.list_keys(f"tenants/t-{size}/")
    objectstore.delete(key)
    assert not objectstore.exists(key)
    with pytest.raises(objectstore.ObjectMissing):
        objectstore.stat(key)


def test_overwrite_replaces(object_store) -> None:
    objectstore.upload("tenants/x/context.bin", io.BytesIO(b"one"))
    objectstore.upload("tenants/x/context.bin", io.BytesIO(b"two"))
    out = io.BytesIO()
    objectstore.download("tenants/x/context.bin", out)
    assert out.getvalue() == b"two"


def test_fs_upload_failure_leaves_no_partial_object(fs_store) -> None:
    class Broken:
        calls = 0

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("disk went away")
            return b"x" * 1000

    with pytest.raises(objectstore.ObjectStoreError, match="disk went away"):
        objectstore.upload("tenants/y/archives/a.sealed", Broken())
    assert objectstore.list_keys("tenants/y/") == []
    assert not any(p.name.endswith(".part") for p in fs_store.rglob("*"))


def test_unreachable_s3_is_an_object_store_error(settings, s3_bucket) -> None:
    from archival.tests.conftest import s3_storage_config

    settings.STORAGES = {**settings.STORAGES, "objects": s3_storage_config(s3_bucket, "http://127.0.0.1:9")}
    with pytest.raises(objectstore.ObjectStoreError, match="upload"):
        objectstore.upload("tenants/z/context.bin", io.BytesIO(b"x"))
