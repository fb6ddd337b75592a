"""The REST API: outsiders refused on every endpoint, staff and internal endpoints, one JSON error shape, audit IPs."""

import base64
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import TEST_ACTOR
from tenants.keys import tenant_data_key
from tenants.models import AuditLog, Device, Tenant, TenantKey, TenantState
from tenants.services import tenant_delete, tenant_suspend
from tenants.tests.test_device_keys import b64url, device_keys, ed25519_pem, rsa_pem, x25519_pem

pytestmark = pytest.mark.django_db

STAFF_IP = "203.0.113.7"  # conftest's staff_api / plain_api REMOTE_ADDR
SERVICE_IP = "10.0.0.5"  # conftest's service_api REMOTE_ADDR


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """The user fixtures hash a password each; PBKDF2 would dominate this module's run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def assert_error(response: Any, status: int, code: str | None = None, fields: set[str] | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if fields is not None:
        assert set(error.get("fields", {})) == fields, error
        for messages in error["fields"].values():
            assert messages
    return error


# --- outsiders on every endpoint ---------------------------------------------------------------------------------

STAFF_ENDPOINTS = [
    ("get", "/api/tenants/"),
    ("post", "/api/tenants/"),
    ("get", "/api/tenants/{tenant}/"),
    ("post", "/api/tenants/{tenant}/suspend/"),
    ("post", "/api/tenants/{tenant}/reactivate/"),
    ("post", "/api/tenants/{tenant}/devices/"),
    ("get", "/api/devices/{device}/"),
    ("post", "/api/devices/{device}/revoke/"),
]
INTERNAL_ENDPOINTS = [
    ("post", "/api/internal/tenants/{tenant}/state"),
    ("get", "/api/internal/tenants/{tenant}/key"),
]
ALL_ENDPOINTS = STAFF_ENDPOINTS + INTERNAL_ENDPOINTS
IDS = [f"{m.upper()} {u}" for m, u in ALL_ENDPOINTS]


@pytest.fixture
def device(tenant: Tenant) -> Device:
    return Device.objects.create(
        tenant=tenant,
        device_name="phone",
        platform="ios",
        **device_keys(),
    )


def _call(client: APIClient, method: str, url: str, tenant: Tenant, device: Device) -> Any:
    url = url.format(tenant=tenant.id, device=device.id)
    if method == "get":
        return client.get(url)
    return client.post(url, {}, format="json")


def _unchanged(tenant: Tenant, device: Device) -> None:
    tenant.refresh_from_db()
    device.refresh_from_db()
    assert tenant.status == "active"
    assert device.revoked_at is None
    assert Tenant.objects.count() == 1
    assert AuditLog.objects.exclude(action="tenant.created").count() == 0


def _scheme(url: str) -> str:
    """The one scheme each endpoint accepts, as its 401 names it in WWW-Authenticate."""
    return "Service" if "/internal/" in url else "Token"


def assert_401(response: Any, url: str) -> None:
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == _scheme(url)


@pytest.mark.parametrize("method,url", ALL_ENDPOINTS, ids=IDS)
def test_no_token_is_401(anon_api: APIClient, tenant: Tenant, device: Device, method: str, url: str) -> None:
    assert_401(_call(anon_api, method, url, tenant, device), url)
    _unchanged(tenant, device)


@pytest.mark.parametrize("method,url", ALL_ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("header", ["Token not-a-real-token", "Service wrong-service-token", "Bearer x.y.z"])
def test_bad_credentials_are_refused(
    anon_api: APIClient, tenant: Tenant, device: Device, method: str, url: str, header: str
) -> None:
    anon_api.credentials(HTTP_AUTHORIZATION=header)
    response = _call(anon_api, method, url, tenant, device)
    assert response.status_code == 401
    _unchanged(tenant, device)


@pytest.mark.parametrize("method,url", STAFF_ENDPOINTS, ids=IDS[: len(STAFF_ENDPOINTS)])
def test_non_staff_token_is_403(plain_api: APIClient, tenant: Tenant, device: Device, method: str, url: str) -> None:
    assert_error(_call(plain_api, method, url, tenant, device), 403)
    _unchanged(tenant, device)


@pytest.mark.parametrize("method,url", INTERNAL_ENDPOINTS, ids=IDS[len(STAFF_ENDPOINTS) :])
def test_user_tokens_are_not_a_scheme_internal_endpoints_accept(
    plain_api: APIClient, staff_api: APIClient, tenant: Tenant, device: Device, method: str, url: str
) -> None:
    for client in (plain_api, staff_api):
        assert_401(_call(client, method, url, tenant, device), url)
    _unchanged(tenant, device)


@pytest.mark.parametrize("method,url", STAFF_ENDPOINTS, ids=IDS[: len(STAFF_ENDPOINTS)])
def test_service_token_is_not_a_scheme_staff_endpoints_accept(
    service_api: APIClient, tenant: Tenant, device: Device, method: str, url: str
) -> None:
    assert_401(_call(service_api, method, url, tenant, device), url)
    _unchanged(tenant, device)


def test_superuser_token_cannot_use_internal_endpoints(superuser: Any, tenant: Tenant) -> None:
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser).key}")
    assert_401(client.get(f"/api/internal/tenants/{tenant.id}/key"), "/internal/")


@pytest.mark.parametrize("method,url", STAFF_ENDPOINTS, ids=IDS[: len(STAFF_ENDPOINTS)])
def test_staff_token_is_let_in(staff_api: APIClient, tenant: Tenant, device: Device, method: str, url: str) -> None:
    response = _call(staff_api, method, url, tenant, device)
    assert response.status_code not in (401, 403, 404, 500), response.content


@pytest.mark.parametrize("method,url", INTERNAL_ENDPOINTS, ids=IDS[len(STAFF_ENDPOINTS) :])
def test_service_token_is_let_into_internal_endpoints(
    service_api: APIClient, tenant: Tenant, device: Device, method: str, url: str
) -> None:
    response = _call(service_api, method, url, tenant, device)
    assert response.status_code not in (401, 403, 404, 500), response.content


def test_session_login_of_a_non_staff_user_is_refused(plain_user: Any) -> None:
    client = APIClient()
    client.force_login(plain_user)
    assert client.get("/api/tenants/").status_code == 403


# --- tenants -----------------------------------------------------------------------------------------------------


def test_create_tenant_201(staff_api: APIClient) -> None:
    response = staff_api.post(
        "/api/tenants/", {"email": "New@Example.com", "tier": "A", "security_mode": "mobile_only"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "new@example.com"
    assert (body["tier"], body["status"], body["security_mode"]) == ("A", "active", "mobile_only")
    assert body["state"]["state"] == "cold"
    assert body["state"]["generation"] == 1
    tenant = Tenant.objects.get(pk=body["id"])
    assert TenantState.objects.filter(tenant=tenant).exists()
    assert TenantKey.objects.filter(tenant=tenant).exists()
    entry = AuditLog.objects.get(tenant=tenant, action="tenant.created")
    assert entry.actor == "user:staff"
    assert entry.ip_address == STAFF_IP
    assert entry.user_id is not None


def test_create_tenant_defaults_security_mode(staff_api: APIClient) -> None:
    response = staff_api.post("/api/tenants/", {"email": "d@example.com", "tier": "C"}, format="json")
    assert response.status_code == 201
    assert response.json()["security_mode"] == "node_based"


@pytest.mark.parametrize(
    "payload,fields",
    [
        ({"email": "x@example.com", "tier": "Z"}, {"tier"}),
        ({"email": "x@example.com", "tier": "a"}, {"tier"}),
        ({"email": "not-an-email", "tier": "B"}, {"email"}),
        ({"email": "x@example.com", "tier": "B", "security_mode": "cloud"}, {"security_mode"}),
        ({"tier": "B"}, {"email"}),
        ({"email": "x@example.com"}, {"tier"}),
        ({}, {"email", "tier"}),
        ({"email": "x@example.com", "tier": ["B"]}, {"tier"}),
        ({"email": "x" * 300 + "@example.com", "tier": "B"}, {"email"}),
    ],
)
def test_create_tenant_400_with_field_errors(staff_api: APIClient, payload: dict, fields: set[str]) -> None:
    response = staff_api.post("/api/tenants/", payload, format="json")
    assert_error(response, 400, "invalid", fields)
    assert not Tenant.objects.exists()
    assert not AuditLog.objects.exists()


def test_create_tenant_malformed_json_is_400(staff_api: APIClient) -> None:
    response = staff_api.post("/api/tenants/", "{not json", content_type="application/json")
    assert_error(response, 400)
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("email", ["owner@example.com", "OWNER@EXAMPLE.COM", "Owner@example.com"])
def test_create_tenant_duplicate_email_any_case_409(staff_api: APIClient, tenant: Tenant, email: str) -> None:
    response = staff_api.post("/api/tenants/", {"email": email, "tier": "A"}, format="json")
    assert_error(response, 409, "conflict", {"email"})
    assert Tenant.objects.count() == 1
    assert AuditLog.objects.count() == 1


def test_retrieve_tenant(staff_api: APIClient, tenant: Tenant) -> None:
    body = staff_api.get(f"/api/tenants/{tenant.id}/").json()
    assert body["id"] == str(tenant.id)
    assert body["email"] == "owner@example.com"
    assert body["state"]["state"] == "cold"


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "garbage"])
def test_retrieve_unknown_tenant_404(staff_api: APIClient, bad: str) -> None:
    assert_error(staff_api.get(f"/api/tenants/{bad}/"), 404, "not_found")


def test_suspend_and_reactivate(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(f"/api/tenants/{tenant.id}/suspend/", {"reason": "abuse"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    entry = AuditLog.objects.get(tenant=tenant, action="tenant.suspended")
    assert entry.ip_address == STAFF_IP
    assert entry.actor == "user:staff"
    assert entry.metadata == {"changes": {"status": ["active", "suspended"]}, "reason": "abuse"}

    response = staff_api.post(f"/api/tenants/{tenant.id}/reactivate/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    assert AuditLog.objects.get(tenant=tenant, action="tenant.reactivated").ip_address == STAFF_IP


def test_suspend_without_body(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(f"/api/tenants/{tenant.id}/suspend/")
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"


def test_reactivate_deleted_tenant_409(staff_api: APIClient, tenant: Tenant, actor: Any) -> None:
    tenant_delete(tenant_id=tenant.id, actor=actor)
    assert_error(staff_api.post(f"/api/tenants/{tenant.id}/reactivate/"), 409, "conflict")
    assert_error(staff_api.post(f"/api/tenants/{tenant.id}/suspend/"), 409, "conflict")
    tenant.refresh_from_db()
    assert tenant.status == "deleted"


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "garbage"])
def test_suspend_unknown_tenant_404(staff_api: APIClient, bad: str) -> None:
    assert_error(staff_api.post(f"/api/tenants/{bad}/suspend/"), 404, "not_found")


def test_suspend_reason_too_long_400(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(f"/api/tenants/{tenant.id}/suspend/", {"reason": "x" * 501}, format="json")
    assert_error(response, 400, "invalid", {"reason"})
    tenant.refresh_from_db()
    assert tenant.status == "active"


# --- list: filters and cursor pagination -------------------------------------------------------------------------


def test_list_filters(staff_api: APIClient, make_tenant: Callable[..., Tenant], actor: Any) -> None:
    a = make_tenant(email="alice@example.com", tier="A")
    b = make_tenant(email="bob@example.com", tier="B")
    c = make_tenant(email="alina@other.org", tier="C")
    tenant_suspend(tenant_id=b.id, actor=actor)

    def ids(query: str) -> set[str]:
        response = staff_api.get(f"/api/tenants/{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {str(a.id), str(b.id), str(c.id)}
    assert ids("?tier=A") == {str(a.id)}
    assert ids("?tier=C") == {str(c.id)}
    assert ids("?status=suspended") == {str(b.id)}
    assert ids("?status=active") == {str(a.id), str(c.id)}
    assert ids("?email=ali") == {str(a.id), str(c.id)}
    assert ids("?email=ALI") == {str(a.id), str(c.id)}  # case-insensitive prefix
    assert ids("?email=alice@example.com") == {str(a.id)}
    assert ids("?email=example.com") == set()  # a prefix, not a substring
    assert ids("?tier=A&email=alina") == set()
    assert ids("?tier=B&status=suspended") == {str(b.id)}


def test_list_cursor_pagination(staff_api: APIClient) -> None:
    now = timezone.now()
    tenants = Tenant.objects.bulk_create(
        Tenant(email=f"p{i:03d}@example.com", tier="ABC"[i % 3], created_at=now - timedelta(seconds=i))
        for i in range(230)
    )
    TenantState.objects.bulk_create(TenantState(tenant=t) for t in tenants)
    expected = [str(t.id) for t in tenants]  # newest first
    seen: list[str] = []
    url: str | None = "/api/tenants/"
    pages = 0
    while url:
        response = staff_api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert "count" not in body  # no full-count queries
        assert len(body["results"]) <= 100
        seen.extend(row["id"] for row in body["results"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == expected


def test_list_pagination_with_filter(staff_api: APIClient) -> None:
    now = timezone.now()
    tenants = Tenant.objects.bulk_create(
        Tenant(email=f"q{i:03d}@example.com", tier="A" if i % 2 else "B", created_at=now - timedelta(seconds=i))
        for i in range(210)
    )
    expected = [str(t.id) for t in tenants if t.tier == "A"]
    first = staff_api.get("/api/tenants/?tier=A").json()
    second = staff_api.get(first["next"]).json()
    assert second["next"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == expected


def test_list_bad_cursor_is_400(staff_api: APIClient) -> None:
    assert_error(staff_api.get("/api/tenants/?cursor=garbage"), 400, "invalid", {"cursor"})


# --- devices -----------------------------------------------------------------------------------------------------


def test_register_device_201(staff_api: APIClient, tenant: Tenant) -> None:
    signing_pem, signing_raw = ed25519_pem()
    keys = {"public_key_signing": signing_pem, "public_key_encryption": device_keys()["public_key_encryption"]}
    response = staff_api.post(
        f"/api/tenants/{tenant.id}/devices/", {"device_name": "Laptop", "platform": "macos", **keys}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant_id"] == str(tenant.id)
    assert body["public_key_signing"] == b64url(signing_raw)
    assert body["revoked_at"] is None
    entry = AuditLog.objects.get(action="device.registered")
    assert str(entry.resource_id) == body["id"]
    assert entry.ip_address == STAFF_IP


@pytest.mark.parametrize(
    "override,fields",
    [
        ({"platform": "windows"}, {"platform"}),
        ({"public_key_signing": "rsa"}, {"public_key_signing"}),
        ({"public_key_signing": "x25519"}, {"public_key_signing"}),
        ({"public_key_encryption": "garbage"}, {"public_key_encryption"}),
        ({"public_key_encryption": b64url(b"\x00" * 31)}, {"public_key_encryption"}),
        ({"device_name": ""}, {"device_name"}),
        ({"device_name": None}, {"device_name"}),
        ({"public_key_signing": 42}, {"public_key_signing"}),
    ],
)
def test_register_device_400(staff_api: APIClient, tenant: Tenant, override: dict, fields: set[str]) -> None:
    payload: dict[str, Any] = {"device_name": "Phone", "platform": "android", **device_keys()}
    pems = {"rsa": rsa_pem, "x25519": lambda: x25519_pem()[0]}
    for key, value in override.items():
        payload[key] = pems[value]() if value in pems else value
    response = staff_api.post(f"/api/tenants/{tenant.id}/devices/", payload, format="json")
    assert_error(response, 400, "invalid", fields)
    assert not Device.objects.exists()


def test_register_device_missing_fields_400(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(f"/api/tenants/{tenant.id}/devices/", {}, format="json")
    assert_error(response, 400, "invalid", {"device_name", "platform", "public_key_signing", "public_key_encryption"})


def test_register_device_duplicate_signing_key_409(
    staff_api: APIClient, tenant: Tenant, make_tenant: Callable[..., Tenant]
) -> None:
    keys = device_keys()
    url = f"/api/tenants/{tenant.id}/devices/"
    assert staff_api.post(url, {"device_name": "a", "platform": "ios", **keys}, format="json").status_code == 201
    other = make_tenant()
    response = staff_api.post(
        f"/api/tenants/{other.id}/devices/", {"device_name": "b", "platform": "ios", **keys}, format="json"
    )
    assert_error(response, 409, "conflict", {"public_key_signing"})
    assert Device.objects.count() == 1


def test_register_device_on_suspended_tenant_409(staff_api: APIClient, tenant: Tenant, actor: Any) -> None:
    tenant_suspend(tenant_id=tenant.id, actor=actor)
    response = staff_api.post(
        f"/api/tenants/{tenant.id}/devices/", {"device_name": "a", "platform": "ios", **device_keys()}, format="json"
    )
    assert_error(response, 409, "conflict")
    assert not Device.objects.exists()


def test_register_device_unknown_tenant_404(staff_api: APIClient) -> None:
    response = staff_api.post(
        f"/api/tenants/{uuid.uuid4()}/devices/",
        {"device_name": "a", "platform": "ios", **device_keys()},
        format="json",
    )
    assert_error(response, 404, "not_found")


def test_revoke_device(staff_api: APIClient, device: Device) -> None:
    response = staff_api.post(f"/api/devices/{device.id}/revoke/")
    assert response.status_code == 200, response.content
    assert response.json()["revoked_at"] is not None
    device.refresh_from_db()
    assert device.revoked_at is not None
    entry = AuditLog.objects.get(action="device.revoked")
    assert entry.ip_address == STAFF_IP
    assert entry.actor == "user:staff"
    # again: still 200, no second audit row
    assert staff_api.post(f"/api/devices/{device.id}/revoke/").status_code == 200
    assert AuditLog.objects.filter(action="device.revoked").count() == 1


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "garbage"])
def test_revoke_unknown_device_404(staff_api: APIClient, bad: str) -> None:
    assert_error(staff_api.post(f"/api/devices/{bad}/revoke/"), 404, "not_found")


def test_retrieve_device(staff_api: APIClient, device: Device) -> None:
    body = staff_api.get(f"/api/devices/{device.id}/").json()
    assert body["id"] == str(device.id)
    assert body["public_key_signing"] == device.public_key_signing


# --- internal state endpoint -------------------------------------------------------------------------------------


def _report(client: APIClient, tenant_id: object, **data: Any) -> Any:
    return client.post(f"/api/internal/tenants/{tenant_id}/state", data, format="json")


def test_state_report_ok(service_api: APIClient, tenant: Tenant) -> None:
    response = _report(service_api, tenant.id, state="warm", generation=1, pod_id="tier-b-2")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["generation"], body["pod_id"]) == ("warm", 1, "tier-b-2")
    state = TenantState.objects.get(tenant=tenant)
    assert (state.state, state.pod_id) == ("warm", "tier-b-2")
    entry = AuditLog.objects.get(tenant=tenant, action="tenant.state_changed")
    assert entry.ip_address == SERVICE_IP
    assert entry.actor == "service:tier-node"


def test_state_report_names_the_calling_service(service_api: APIClient, tenant: Tenant) -> None:
    service_api.credentials(
        HTTP_AUTHORIZATION=service_api._credentials["HTTP_AUTHORIZATION"],  # type: ignore[attr-defined]
        HTTP_X_PERCOLATE_SERVICE="tier-b-7",
    )
    assert _report(service_api, tenant.id, state="hot", generation=1).status_code == 200
    assert AuditLog.objects.get(action="tenant.state_changed").actor == "service:tier-b-7"


def test_state_report_stale_generation_409(service_api: APIClient, tenant: Tenant) -> None:
    TenantState.objects.filter(tenant=tenant).update(state="hot", generation=4)
    assert_error(_report(service_api, tenant.id, state="warm", generation=3), 409, "stale_generation")
    assert TenantState.objects.get(tenant=tenant).state == "hot"
    assert not AuditLog.objects.filter(action="tenant.state_changed").exists()


def test_state_report_forbidden_transition_409(service_api: APIClient, tenant: Tenant) -> None:
    assert_error(_report(service_api, tenant.id, state="restoring", generation=1), 409, "forbidden_transition")
    assert TenantState.objects.get(tenant=tenant).state == "cold"
    assert not AuditLog.objects.filter(action="tenant.state_changed").exists()


@pytest.mark.parametrize(
    "data,fields",
    [
        ({"state": "frozen", "generation": 1}, {"state"}),
        ({"state": "HOT", "generation": 1}, {"state"}),
        ({"generation": 1}, {"state"}),
        ({"state": "warm"}, {"generation"}),
        ({"state": "warm", "generation": 0}, {"generation"}),
        ({"state": "warm", "generation": "abc"}, {"generation"}),
        ({"state": "warm", "generation": -2}, {"generation"}),
        ({"state": "x" * 11, "generation": 1}, {"state"}),
    ],
)
def test_state_report_bad_input_400(service_api: APIClient, tenant: Tenant, data: dict, fields: set[str]) -> None:
    assert_error(_report(service_api, tenant.id, **data), 400, "invalid", fields)
    assert TenantState.objects.get(tenant=tenant).state == "cold"


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "garbage"])
def test_state_report_unknown_tenant_404(service_api: APIClient, bad: str) -> None:
    assert_error(_report(service_api, bad, state="warm", generation=1), 404, "not_found")


# --- internal key endpoint ---------------------------------------------------------------------------------------


def test_key_endpoint_returns_the_active_key(service_api: APIClient, tenant: Tenant) -> None:
    response = service_api.get(f"/api/internal/tenants/{tenant.id}/key")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    key_id, key = tenant_data_key(tenant_id=tenant.id)
    assert body == {"key_id": key_id, "key": base64.b64encode(key).decode()}
    assert len(base64.b64decode(body["key"])) == 32


def test_key_endpoint_by_key_id(service_api: APIClient, tenant: Tenant) -> None:
    from tenants.keys import tenant_key_rotate

    old_id, old_key = tenant_data_key(tenant_id=tenant.id)
    tenant_key_rotate(tenant_id=tenant.id, actor=TEST_ACTOR)
    body = service_api.get(f"/api/internal/tenants/{tenant.id}/key?key_id={old_id}").json()
    assert body == {"key_id": old_id, "key": base64.b64encode(old_key).decode()}
    assert service_api.get(f"/api/internal/tenants/{tenant.id}/key").json()["key_id"] != old_id
    assert_error(service_api.get(f"/api/internal/tenants/{tenant.id}/key?key_id=tk-nope"), 404, "not_found")


def test_key_endpoint_mobile_only_409(service_api: APIClient, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(security_mode="mobile_only")
    assert_error(service_api.get(f"/api/internal/tenants/{tenant.id}/key"), 409, "conflict")


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), "garbage"])
def test_key_endpoint_unknown_tenant_404(service_api: APIClient, bad: str) -> None:
    assert_error(service_api.get(f"/api/internal/tenants/{bad}/key"), 404, "not_found")


def test_key_endpoint_never_writes_the_key_to_the_audit_log(service_api: APIClient, tenant: Tenant) -> None:
    key = base64.b64decode(service_api.get(f"/api/internal/tenants/{tenant.id}/key").json()["key"])
    for entry in AuditLog.objects.all():
        assert base64.b64encode(key).decode() not in str(entry.metadata)
        assert key.hex() not in str(entry.metadata)


# --- schema ------------------------------------------------------------------------------------------------------


def test_schema_is_an_openapi_document(staff_api: APIClient) -> None:
    response = staff_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/tenants/",
        "/api/tenants/{id}/",
        "/api/tenants/{id}/suspend/",
        "/api/tenants/{id}/reactivate/",
        "/api/tenants/{id}/devices/",
        "/api/devices/{id}/revoke/",
        "/api/internal/tenants/{tenant_id}/state",
        "/api/internal/tenants/{tenant_id}/key",
    ):
        assert path in paths, sorted(paths)
    assert "post" in paths["/api/tenants/"]


def test_schema_yaml_by_default(staff_api: APIClient) -> None:
    response = staff_api.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi:" in response.content
