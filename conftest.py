"""Shared fixtures: the owner/staff/outsider cast every endpoint test uses, and tenant factories."""

import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from core.audit import Actor
from tenants.models import Tenant
from tenants.services import tenant_provision

TEST_ACTOR = Actor(label="test:pytest", ip_address="127.0.0.1")


@pytest.fixture
def actor() -> Actor:
    return TEST_ACTOR


@pytest.fixture
def make_tenant(db: None) -> Callable[..., Tenant]:
    def make(*, email: str | None = None, tier: str = "B", security_mode: str = "node_based") -> Tenant:
        return tenant_provision(
            email=email or f"t-{uuid.uuid4().hex[:12]}@example.com",
            tier=tier,
            security_mode=security_mode,
            actor=TEST_ACTOR,
        )

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant(email="owner@example.com", tier="B")


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", "root-password-123")


@pytest.fixture
def staff_user(db: None) -> User:
    """Staff with every tenants/billing/archival permission: the API's normal caller."""
    user = User.objects.create_user("staff", "staff@example.com", "staff-password-123", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["tenants", "billing", "archival", "moves"])
    )
    return user


@pytest.fixture
def staff_without_permissions(db: None) -> User:
    return User.objects.create_user("staff-noperm", "noperm@example.com", "noperm-password-123", is_staff=True)


@pytest.fixture
def plain_user(db: None) -> User:
    return User.objects.create_user("plain", "plain@example.com", "plain-password-123")


def _token_client(user: User) -> APIClient:
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff_api(staff_user: User) -> APIClient:
    return _token_client(staff_user)


@pytest.fixture
def plain_api(plain_user: User) -> APIClient:
    return _token_client(plain_user)


@pytest.fixture
def service_api(settings: object) -> APIClient:
    from django.conf import settings as dj

    client = APIClient(REMOTE_ADDR="10.0.0.5")
    client.credentials(HTTP_AUTHORIZATION=f"Service {dj.PLATFORM_SERVICE_TOKEN}")
    return client


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def admin_client_root(superuser: User) -> Client:
    client = Client(REMOTE_ADDR="198.51.100.20")
    client.force_login(superuser)
    return client


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Headless Chromium (Debian's) driven through chromedriver; see percolate_platform/tests/browser.py."""
    from percolate_platform.tests.browser import chromium

    yield from chromium(tmp_path, monkeypatch)
