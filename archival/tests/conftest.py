"""Archival fixtures: a fresh bucket on the real SeaweedFS per session, object-store and data-root overrides,
RocksDB tenant builders and a crash-injection hook."""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from archival import jobs, rocks
from archival.selectors import tenant_data_dir
from tenants.models import Tenant

S3_ENDPOINT = os.environ.get("S3_ENDPOINT_URL") or "http://127.0.0.1:8333"
S3_KEYS = {"aws_access_key_id": "percolate", "aws_secret_access_key": "percolate"}


class SimulatedCrash(BaseException):
    """Raised from a step hook: like a process dying, no `except Exception` handler sees it."""


def s3_client(endpoint: str = S3_ENDPOINT):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        **S3_KEYS,
    )


def s3_storage_config(bucket: str, endpoint: str = S3_ENDPOINT) -> dict:
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": endpoint,
            "bucket_name": bucket,
            "access_key": "percolate",
            "secret_key": "percolate",
            "region_name": "us-east-1",
            "file_overwrite": True,
            "default_acl": None,
            "addressing_style": "path",
            "signature_version": "s3v4",
        },
    }


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[str]:
    client = s3_client()
    name = f"percolate-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)
    except Exception:
        pass


def _storages(settings, objects: dict) -> None:
    settings.STORAGES = {**settings.STORAGES, "objects": objects}


@pytest.fixture
def fs_store(settings, tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    _storages(settings, {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}})
    return root


@pytest.fixture
def s3_store(settings, s3_bucket: str) -> str:
    _storages(settings, s3_storage_config(s3_bucket))
    return s3_bucket


@pytest.fixture(params=["fs", "s3"])
def object_store(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(f"{request.param}_store")
    return request.param


@pytest.fixture
def data_root(settings, tmp_path: Path) -> Path:
    root = tmp_path / "tenant-data"
    root.mkdir()
    settings.TENANT_DATA_ROOT = root
    return root


def sample_entries(n: int, *, value_size: int = 200, seed: int = 0) -> dict[bytes, bytes]:
    rnd = __import__("random").Random(seed)
    return {
        f"msg:{i:08d}".encode(): (
            f'{{"i":{i},"text":"{"hello memory " * (value_size // 13)}"}}'.encode() + rnd.randbytes(value_size // 4)
        )
        for i in range(n)
    }


@pytest.fixture
def rocks_tenant(data_root: Path) -> Callable[..., rocks.RocksDigest]:
    """Build the tenant's RocksDB under the data root; returns its digest."""

    def build(tenant: Tenant, n: int = 200, *, value_size: int = 200, cfs: dict | None = None) -> rocks.RocksDigest:
        path = tenant_data_dir(tenant.id)
        if path.exists():
            shutil.rmtree(path)
        rocks.build(path, sample_entries(n, value_size=value_size, seed=n), column_families=cfs)
        return rocks.digest(path)

    return build


@pytest.fixture
def crash_at() -> Iterator[Callable[[str], None]]:
    """crash_at("after_upload") makes the services raise SimulatedCrash once at that step."""
    armed: set[str] = set()

    def hook(step: str, job: object) -> None:
        if step in armed:
            armed.discard(step)
            raise SimulatedCrash(step)

    jobs.STEP_HOOK = hook
    yield armed.add
    jobs.STEP_HOOK = None
