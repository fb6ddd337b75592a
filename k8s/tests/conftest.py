"""Fixtures for running rendered workloads locally: the prod render and the secret values their files get."""

import secrets
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection

from k8s import manifests

SERVICE_TOKEN = "k8s-tests-service-token-" + secrets.token_hex(8)


def database_url(name: str | None = None) -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name or db['NAME']}"


@pytest.fixture(scope="module")
def prod() -> list[manifests.Obj]:
    return manifests.rendered_overlay("prod")


@pytest.fixture
def platform_secrets() -> Callable[..., dict[str, str]]:
    """The values of platform-secrets' files, pointing at this test run's database and Redis."""

    def make(db_url: str | None = None) -> dict[str, str]:
        return {
            "DATABASE_URL": db_url or database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SECRET_KEY": secrets.token_hex(32),
            "PLATFORM_MASTER_KEY": settings.PLATFORM_MASTER_KEY.hex(),
            "PLATFORM_SERVICE_TOKEN": SERVICE_TOKEN,
            "S3_ACCESS_KEY_ID": "percolate",
            "S3_SECRET_ACCESS_KEY": "percolate",
            "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
            "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        }

    return make
