"""Backup fixtures: the backup and object stores on the real SeaweedFS, scratch databases that are always dropped."""

import os
import secrets
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from archival import objectstore
from archival.tests.conftest import (  # noqa: F401 (fixtures)
    SimulatedCrash,
    data_root,
    rocks_tenant,
    s3_bucket,
    s3_storage_config,
    s3_store,
)
from backups import pg, services, store


def _clear_backups() -> None:
    for key in objectstore.list_keys(store.PREFIX, alias=store.ALIAS):
        objectstore.delete(key, alias=store.ALIAS)


@pytest.fixture
def backup_store(settings, s3_bucket: str) -> Iterator[str]:  # noqa: F811
    """Backups and tenant objects in the same test bucket (production gives backups their own); each test starts
    with no backups in it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "objects": s3_storage_config(s3_bucket),
        "backups": s3_storage_config(s3_bucket),
    }
    _clear_backups()
    yield s3_bucket
    settings.STORAGES = {**settings.STORAGES, "backups": s3_storage_config(s3_bucket)}
    _clear_backups()


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test"


@pytest.fixture
def scratch_db() -> Iterator[Callable[..., str]]:
    """scratch_db() -> the URL of a new empty database named <suite database>_drill_<random>; all dropped after."""
    made: list[str] = []
    base = urlsplit(_server_url())

    def make(*, create: bool = True) -> str:
        name = f"{base.path.lstrip('/')}_drill_{secrets.token_hex(4)}"
        url = urlunsplit((base.scheme, base.netloc, "/" + name, "", ""))
        made.append(url)
        if create:
            pg.create_database(pg.target_from_url(url))
        return url

    yield make
    for url in made:
        pg.drop_database(pg.target_from_url(url))


@pytest.fixture
def crash_at() -> Iterator[Callable[[str], None]]:
    """crash_at("dumped") makes the backup services raise SimulatedCrash once at that step."""
    armed: set[str] = set()

    def hook(step: str) -> None:
        if step in armed:
            armed.discard(step)
            raise SimulatedCrash(step)

    services.STEP_HOOK = hook
    yield armed.add
    services.STEP_HOOK = None
