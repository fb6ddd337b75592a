"""Input that reaches a parser, the ORM or a paginator unchecked must be a 400 with the JSON error body, never a 500:
NUL and lone surrogates anywhere (path, header, cookie, query, form field, JSON string or key), JSON nested past the
recursion limit, forged cursors; and every response under /api/ is JSON (item 1 and item 6 of issue 20)."""

import json
import uuid
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tenants.models import AuditLog, Tenant, TenantState
from tenants.tests.test_api import assert_error
from tenants.tests.test_device_keys import device_keys

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000  # 2 KB; json.loads raises RecursionError on it


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _json_endpoints(tenant: Tenant) -> list[tuple[str, str]]:
    return [
        ("staff", "/api/tenants/"),
        ("staff", f"/api/tenants/{tenant.id}/suspend/"),
        ("staff", f"/api/tenants/{tenant.id}/devices/"),
        ("service", f"/api/internal/tenants/{tenant.id}/state"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        '{"email": "' + "[" * 0 + 'a@b.co", "tier": "A", "x": ' + "[" * 40 + "]" * 40 + "}",
        '{"email": "a\\u0000@example.com", "tier": "A"}',
        '{"email": "a@example.com", "tier": "A", "reason\\u0000": 1}',
        '{"email": "\\ud800@example.com", "tier": "A"}',
        '{"reason": "\\udfff"}',
        '{"device_name": "a\\u0000", "platform": "ios"}',
    ],
    ids=["1000-deep", "41-deep", "nul-in-string", "nul-in-key", "lone-high-surrogate", "lone-low-surrogate", "nul"],
)
def test_json_bodies_that_would_crash_the_parser_or_the_database_are_400(
    staff_api: APIClient, service_api: APIClient, tenant: Tenant, body: str
) -> None:
    clients = {"staff": staff_api, "service": service_api}
    for who, url in _json_endpoints(tenant):
        response = clients[who].post(url, body, content_type="application/json")
        assert_error(response, 400)
    tenant.refresh_from_db()
    assert tenant.status == "active"
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize("param", ["email", "tier", "status", "cursor"])
@pytest.mark.parametrize("value", ["%00", "a%00b"])
def test_nul_in_a_list_filter_is_400(staff_api: APIClient, param: str, value: str) -> None:
    assert_error(staff_api.get(f"/api/tenants/?{param}={value}"), 400, "invalid")


def test_nul_in_the_key_id_is_400(service_api: APIClient, tenant: Tenant) -> None:
    assert_error(service_api.get(f"/api/internal/tenants/{tenant.id}/key?key_id=%00"), 400, "invalid")


@pytest.mark.parametrize(
    "cursor", ["notadate", "9999-99-99", "cD05OTk5LTk5LTk5", "0-" + "0" * 31, "1" * 18 + "-" + "a" * 32]
)
def test_a_forged_cursor_is_400(staff_api: APIClient, cursor: str) -> None:
    assert_error(staff_api.get(f"/api/tenants/?cursor={cursor}"), 400, "invalid", {"cursor"})


@pytest.mark.parametrize(
    "header", [{"HTTP_USER_AGENT": "probe\x00"}, {"HTTP_X_PERCOLATE_SERVICE": "tier\x00b"}, {"HTTP_COOKIE": "a=\x00"}]
)
def test_nul_in_a_header_or_cookie_is_400_before_anything_is_written(
    service_api: APIClient, tenant: Tenant, header: dict[str, str]
) -> None:
    response = service_api.post(
        f"/api/internal/tenants/{tenant.id}/state", {"state": "warm", "generation": 1}, format="json", **header
    )
    assert_error(response, 400, "invalid")
    assert TenantState.objects.get(tenant=tenant).state == "cold"


def test_nul_in_the_path_is_400(staff_api: APIClient) -> None:
    assert_error(staff_api.get("/api/tenants/%00/"), 400, "invalid")


# --- the admin: every changelist's search, ordering, pagination and list filters ----------------------------------


def _filter_parameters(model_admin: admin.ModelAdmin, request: Any) -> list[str]:
    """The query parameters the changelist's list filters read."""
    changelist = model_admin.get_changelist_instance(request)
    return [name for spec in changelist.filter_specs for name in spec.expected_parameters() if name]


def test_nul_anywhere_in_any_admin_changelist_query_is_400(admin_client_root: Client, rf: Any, superuser: Any) -> None:
    checked = 0
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        request = rf.get(url)
        request.user = superuser
        for name in ["q", "o", "p", *_filter_parameters(model_admin, request)]:
            response = admin_client_root.get(f"{url}?{name}=%00")
            assert response.status_code == 400, (url, name, response.status_code)
            assert response.json()["error"]["code"] == "invalid"
            checked += 1
    assert checked > 30  # every registered admin, each with its filters


@pytest.mark.parametrize("query", ["tier__exact=%00", "status__exact=%00", "state__state__exact=%00"])
def test_the_tenant_admin_filters_named_in_the_issue(admin_client_root: Client, query: str) -> None:
    assert admin_client_root.get(f"/admin/tenants/tenant/?{query}").status_code == 400


def test_the_audit_log_action_filter_named_in_the_issue(admin_client_root: Client) -> None:
    assert admin_client_root.get("/admin/tenants/auditlog/?action=%00").status_code == 400


def test_nul_in_an_admin_form_field_is_400_and_changes_nothing(admin_client_root: Client, tenant: Tenant) -> None:
    response = admin_client_root.post(
        "/admin/tenants/tenant/",
        {"action": "mark_deleted", "_selected_action": [str(tenant.id)], "post": "yes", "reason": "bye\x00"},
    )
    assert response.status_code == 400
    tenant.refresh_from_db()
    assert tenant.status == "active"
    assert not AuditLog.objects.filter(action="tenant.deleted").exists()


def test_nul_in_an_object_id_of_the_admin_is_400(admin_client_root: Client) -> None:
    assert admin_client_root.get("/admin/authtoken/tokenproxy/%00/change/").status_code == 400


# --- every response under /api/ is JSON --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/tenants/0.5/", "/api/nope", "/api/", "/api", "/api/devices/garbage/revoke/"])
def test_paths_no_route_matches_are_a_json_404(staff_api: APIClient, path: str) -> None:
    assert_error(staff_api.get(path), 404, "not_found")
    assert_error(staff_api.post(path, {}, format="json"), 404, "not_found")


@pytest.mark.parametrize("debug", [True, False])
def test_post_without_the_trailing_slash_is_a_json_404_naming_the_slash(
    staff_api: APIClient, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    response = staff_api.post("/api/tenants", {"email": "a@example.com", "tier": "A"}, format="json")
    error = assert_error(response, 404, "not_found")
    assert "/api/tenants/" in error["message"]
    assert not Tenant.objects.exists()


def test_a_body_over_the_limit_is_a_json_413_and_is_not_read(staff_api: APIClient, settings: Any) -> None:
    body = json.dumps({"email": "a@example.com", "tier": "A", "pad": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    assert_error(staff_api.post("/api/tenants/", body, content_type="application/json"), 413, "request_too_large")
    assert not Tenant.objects.exists()


def test_a_form_body_is_a_json_415(staff_api: APIClient) -> None:
    assert_error(staff_api.post("/api/tenants/", {"email": "a@example.com", "tier": "A"}), 415)


@pytest.mark.parametrize("accept", [None, "application/yaml", "application/vnd.oai.openapi", "*/*"])
def test_the_anonymous_schema_request_is_a_json_401(anon_api: APIClient, accept: str | None) -> None:
    response = anon_api.get("/api/schema/", **({"HTTP_ACCEPT": accept} if accept else {}))
    assert_error(response, 401)
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"


def test_a_session_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page(
    admin_client_root: Client, tenant: Tenant
) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.cookies = admin_client_root.cookies
    response = csrf_client.post(f"/api/tenants/{uuid.uuid4()}x/suspend/", {})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_django_error_handlers_answer_json_under_api_and_html_elsewhere(rf: Any) -> None:
    from core import api_errors

    api = rf.get("/api/tenants/")
    assert json.loads(api_errors.server_error(api).content)["error"]["code"] == "server_error"
    assert json.loads(api_errors.bad_request(api, ValueError()).content)["error"]["code"] == "bad_request"
    assert json.loads(api_errors.permission_denied(api, ValueError()).content)["error"]["code"] == "permission_denied"
    assert b"<" in api_errors.server_error(rf.get("/admin/")).content


def test_a_device_body_with_a_valid_key_pair_still_works(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(
        f"/api/tenants/{tenant.id}/devices/", {"device_name": "a", "platform": "ios", **device_keys()}, format="json"
    )
    assert response.status_code == 201, response.content
