"""The schema is the contract (item 7 of issue 20): refusals documented with one error body, fixed values as enums,
filters documented, one auth scheme family per endpoint, links that chain create -> read -> suspend, and loose
input refused."""

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tenants.tests.test_api import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in node:
        return _resolve(schema, node["allOf"][0])
    return node


def test_every_operation_documents_its_refusals_with_the_error_body(schema: dict[str, Any]) -> None:
    for path, method, op in _operations(schema):
        expected = {"400", "401", "403"} | ({"404"} if "{" in path else set())
        expected |= {"413", "415"} if "requestBody" in op else set()
        assert expected <= set(op["responses"]), (method, path, sorted(op["responses"]))
        for code, response in op["responses"].items():
            if code.startswith("4"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)
    writes = {(p, m) for p, m, op in _operations(schema) if "409" in op["responses"]}
    assert ("/api/tenants/", "post") in writes and ("/api/internal/tenants/{tenant_id}/state", "post") in writes


@pytest.mark.parametrize(
    "component,field,values",
    [
        ("TenantIn", "tier", ["A", "B", "C"]),
        ("TenantIn", "security_mode", ["node_based", "mobile_only"]),
        ("TenantOut", "tier", ["A", "B", "C"]),
        ("TenantOut", "status", ["active", "suspended", "deleted"]),
        ("DeviceIn", "platform", ["ios", "android", "macos", "linux", "web"]),
        ("StateReportIn", "state", ["hot", "warm", "cold", "archived", "restoring"]),
        ("TenantStateOut", "state", ["hot", "warm", "cold", "archived", "restoring"]),
    ],
)
def test_fixed_values_are_enums(schema: dict[str, Any], component: str, field: str, values: list[str]) -> None:
    node = _resolve(schema, schema["components"]["schemas"][component]["properties"][field])
    assert node["enum"] == values


def test_request_bodies_are_closed(schema: dict[str, Any]) -> None:
    for name in ("TenantIn", "ReasonIn", "DeviceIn", "StateReportIn"):
        assert schema["components"]["schemas"][name]["additionalProperties"] is False


def test_list_filters_are_documented(schema: dict[str, Any]) -> None:
    params = {p["name"]: p for p in schema["paths"]["/api/tenants/"]["get"]["parameters"]}
    assert set(params) == {"tier", "status", "email", "cursor"}
    assert params["tier"]["schema"]["enum"] == ["A", "B", "C"]
    assert params["status"]["schema"]["enum"] == ["active", "suspended", "deleted"]
    assert "pattern" in params["cursor"]["schema"]


# Staff and service both: the tier-move endpoints (issue 13), which billing calls with the service credential.
STAFF_OR_SERVICE = {"/api/tenants/{tenant_id}/move/", "/api/moves/{move_id}/"}


def test_each_operation_lists_only_the_schemes_it_accepts(schema: dict[str, Any]) -> None:
    for path, method, op in _operations(schema):
        schemes = {name for requirement in op["security"] for name in requirement}
        expected = {"ServiceToken"} if path.startswith("/api/internal/") else {"tokenAuth", "cookieAuth"}
        if path in STAFF_OR_SERVICE:
            expected = {"ServiceToken", "tokenAuth", "cookieAuth"}
        assert schemes == expected, (method, path, schemes)


def test_links_chain_create_read_suspend(schema: dict[str, Any]) -> None:
    created = schema["paths"]["/api/tenants/"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in created.values()}
    assert {"tenants_retrieve", "tenants_suspend_create", "tenants_reactivate_create"} <= targets
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in created.values())
    device = schema["paths"]["/api/tenants/{id}/devices/"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in device.values()} == {"devices_retrieve", "devices_revoke_create"}


def test_staff_operations_name_their_permission(schema: dict[str, Any]) -> None:
    op = schema["paths"]["/api/tenants/{id}/suspend/"]["post"]
    assert op["x-required-permission"] == "tenants.change_tenant"


@pytest.mark.parametrize(
    "url,body",
    [
        ("/api/tenants/{id}/suspend/", {"reason": 0}),
        ("/api/tenants/{id}/suspend/", {"reason": ["x"]}),
        ("/api/tenants/{id}/suspend/", {"reason": "x", "extra": 1}),
        ("/api/tenants/", {"email": "a@example.com", "tier": "A", "security_mode": 1}),
        ("/api/tenants/", {"email": 5, "tier": "A"}),
    ],
)
def test_loose_bodies_are_400(staff_api: APIClient, tenant: Any, url: str, body: dict[str, Any]) -> None:
    assert_error(staff_api.post(url.format(id=tenant.id), body, format="json"), 400, "invalid")
    tenant.refresh_from_db()
    assert tenant.status == "active"


@pytest.mark.parametrize("body", [{"state": "warm", "generation": "1"}, {"state": "warm", "generation": True}])
def test_loose_numbers_are_400(service_api: APIClient, tenant: Any, body: dict[str, Any]) -> None:
    response = service_api.post(f"/api/internal/tenants/{tenant.id}/state", body, format="json")
    assert_error(response, 400, "invalid", {"generation"})


@pytest.mark.parametrize("query", ["tier=AAA", "status=gone", "tier=", "email="])
def test_loose_filters_are_400(staff_api: APIClient, query: str) -> None:
    assert_error(staff_api.get(f"/api/tenants/?{query}"), 400, "invalid")
