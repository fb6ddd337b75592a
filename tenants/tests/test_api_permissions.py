"""The API checks the Django model permissions the admin does, per action (item 4 of issue 20): a staff user with no
permission can do nothing; with one permission, exactly the operations that permission allows."""

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import User
from core.api_permissions import HasModelPermission
from tenants.models import AuditLog, Device, Tenant
from tenants.tests.test_api import assert_error
from tenants.tests.test_device_keys import device_keys

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# (method, url, the permissions any one of which allows it), as the admin decides for the same operation.
OPERATIONS = [
    ("get", "/api/tenants/", {"view_tenant", "change_tenant"}),
    ("get", "/api/tenants/{tenant}/", {"view_tenant", "change_tenant"}),
    ("post", "/api/tenants/", {"add_tenant"}),
    ("post", "/api/tenants/{tenant}/suspend/", {"change_tenant"}),
    ("post", "/api/tenants/{tenant}/reactivate/", {"change_tenant"}),
    ("post", "/api/tenants/{tenant}/devices/", {"add_device"}),
    ("get", "/api/devices/{device}/", {"view_device", "change_device"}),
    ("post", "/api/devices/{device}/revoke/", {"change_device"}),
]
CODENAMES = sorted({f"{kind}_{model}" for kind in ("view", "add", "change") for model in ("tenant", "device")})


def _staff_with(*codenames: str) -> APIClient:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="tenants", codename__in=codenames))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _call(client: APIClient, method: str, url: str, tenant: Tenant, device: Device) -> Any:
    url = url.format(tenant=tenant.id, device=device.id)
    if method == "get":
        return client.get(url)
    if url == "/api/tenants/":
        return client.post(url, {"email": f"{uuid.uuid4().hex[:8]}@example.com", "tier": "C"}, format="json")
    if url.endswith("/devices/"):
        return client.post(url, {"device_name": "d", "platform": "ios", **device_keys()}, format="json")
    return client.post(url, {}, format="json")


@pytest.fixture
def device(tenant: Tenant) -> Device:
    return Device.objects.create(tenant=tenant, device_name="phone", platform="ios", **device_keys())


@pytest.mark.parametrize("method,url,_", OPERATIONS, ids=[f"{m} {u}" for m, u, _ in OPERATIONS])
def test_staff_without_permissions_can_do_nothing(
    tenant: Tenant, device: Device, method: str, url: str, _: Any
) -> None:
    error = assert_error(_call(_staff_with(), method, url, tenant, device), 403, "permission_denied")
    assert "needs the permission tenants." in error["message"]
    tenant.refresh_from_db()
    device.refresh_from_db()
    assert (tenant.status, device.revoked_at, Tenant.objects.count()) == ("active", None, 1)
    assert not AuditLog.objects.exclude(action="tenant.created").exists()


@pytest.mark.parametrize("codename", CODENAMES)
def test_each_permission_allows_exactly_its_operations(tenant: Tenant, device: Device, codename: str) -> None:
    client = _staff_with(codename)
    for method, url, allowed_by in OPERATIONS:
        response = _call(client, method, url, tenant, device)
        if codename in allowed_by:
            assert response.status_code in (200, 201), (codename, method, url, response.content)
        else:
            assert response.status_code == 403, (codename, method, url, response.content)


def test_a_non_staff_user_with_every_permission_is_still_refused(tenant: Tenant, device: Device) -> None:
    user = User.objects.create_user("not-staff")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="tenants"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    for method, url, _ in OPERATIONS:
        assert_error(_call(client, method, url, tenant, device), 403)


def _api_views(patterns: list[Any]) -> list[Any]:
    views = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            views += _api_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
            views.append(pattern.callback)
    return views


def test_every_staff_action_of_every_api_view_names_its_permission() -> None:
    """The rule for new endpoints: a view that uses HasModelPermission lists each of its actions."""
    checked = 0
    for callback in _api_views(get_resolver().url_patterns):
        cls = callback.cls
        if not issubclass(cls, APIView) or not any(isinstance(p, HasModelPermission) for p in cls().get_permissions()):
            continue
        actions = getattr(callback, "actions", None) or {m: m for m in cls.http_method_names if hasattr(cls, m)}
        for action in actions.values():
            if action in ("options", "head"):
                continue
            assert action in cls.action_permissions, f"{cls.__name__}.{action} has no entry in action_permissions"
            checked += 1
    assert checked >= len(OPERATIONS)
