"""The moves API: 202 with the move, the move by id; staff with the admin's permission or the service credential,
and every outsider refused with a JSON error and nothing started."""

import uuid
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from gateway.auth.tokens import mint_platform_token
from moves.models import Move, MoveStatus
from moves.services import tenant_move
from moves.tests.conftest import ACTOR
from tenants.models import AuditLog, Tenant
from tenants.services import tenant_delete, tenant_suspend
from tenants.tests.test_api import assert_error

pytestmark = pytest.mark.django_db


def move_url(tenant: Tenant) -> str:
    return f"/api/tenants/{tenant.id}/move/"


def _staff_with(*codenames: str) -> APIClient:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_staff_starts_a_move_and_reads_it(staff_api: APIClient, tenant: Tenant) -> None:
    response = staff_api.post(move_url(tenant), {"tier": "A", "reason": "upgrade"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    move = Move.objects.get(tenant=tenant)
    assert (body["id"], body["tenant_id"], body["from_tier"], body["to_tier"]) == (
        str(move.id),
        str(tenant.id),
        "B",
        "A",
    )
    assert (body["status"], body["requested_by"], body["reason"]) == (MoveStatus.PENDING, "user:staff", "upgrade")
    again = staff_api.post(move_url(tenant), {"tier": "A"}, format="json")
    assert again.status_code == 202 and again.json()["id"] == str(move.id)  # a retry starts nothing new
    got = staff_api.get(f"/api/moves/{move.id}/")
    assert got.status_code == 200 and got.json()["id"] == str(move.id)
    row = AuditLog.objects.get(tenant=tenant, action="tenant.move_requested")
    assert row.ip_address == "203.0.113.7"


def test_service_credential_starts_a_move_and_reads_it(service_api: APIClient, tenant: Tenant) -> None:
    response = service_api.post(move_url(tenant), {"tier": "C"}, format="json", HTTP_X_PERCOLATE_SERVICE="billing")
    assert response.status_code == 202, response.content
    assert response.json()["requested_by"] == "service:billing"
    assert service_api.get(f"/api/moves/{response.json()['id']}/").status_code == 200


def test_same_tier_is_a_finished_no_op(staff_api: APIClient, tenant: Tenant) -> None:
    body = staff_api.post(move_url(tenant), {"tier": "B"}, format="json").json()
    assert (body["status"], body["step"]) == (MoveStatus.COMPLETED, "noop")


def test_a_suspended_tenant_can_be_moved(staff_api: APIClient, tenant: Tenant) -> None:
    tenant_suspend(tenant_id=tenant.id, actor=ACTOR)
    assert staff_api.post(move_url(tenant), {"tier": "A"}, format="json").status_code == 202


def test_conflicts_are_409(staff_api: APIClient, make_tenant: Any) -> None:
    moving = make_tenant()
    tenant_move(tenant_id=moving.id, tier="A", actor=ACTOR, enqueue=False)
    error = assert_error(staff_api.post(move_url(moving), {"tier": "C"}, format="json"), 409, "conflict")
    assert "already moving to tier A" in error["message"]
    deleted = make_tenant()
    tenant_delete(tenant_id=deleted.id, actor=ACTOR)
    assert_error(staff_api.post(move_url(deleted), {"tier": "C"}, format="json"), 409, "conflict")


@pytest.mark.parametrize(
    "body,fields",
    [
        ({}, {"tier"}),
        ({"tier": "Z"}, {"tier"}),
        ({"tier": 1}, {"tier"}),
        ({"tier": "A", "reason": "x" * 501}, {"reason"}),
        ({"tier": "A", "extra": True}, {"extra"}),
    ],
)
def test_bad_input_is_400_and_starts_nothing(staff_api: APIClient, tenant: Tenant, body: dict, fields: set) -> None:
    assert_error(staff_api.post(move_url(tenant), body, format="json"), 400, fields=fields)
    assert not Move.objects.exists()


def test_unknown_ids_are_json_404(staff_api: APIClient) -> None:
    assert_error(staff_api.post(f"/api/tenants/{uuid.uuid4()}/move/", {"tier": "A"}, format="json"), 404)
    assert_error(staff_api.get(f"/api/moves/{uuid.uuid4()}/"), 404)
    assert_error(staff_api.get("/api/moves/not-a-uuid/"), 404)


def test_outsiders_are_refused_and_start_nothing(
    anon_api: APIClient, plain_api: APIClient, tenant: Tenant, make_tenant: Any
) -> None:
    move = tenant_move(tenant_id=make_tenant().id, tier="A", actor=ACTOR, enqueue=False)
    other = make_tenant(tier="C")
    tenant_token = mint_platform_token(
        master_key=settings.PLATFORM_MASTER_KEY, tenant_id=other.id
    )  # another tenant's own credential (the gateway's)
    suspended = make_tenant()
    tenant_suspend(tenant_id=suspended.id, actor=ACTOR)
    for header, status in [
        (None, 401),
        ("Token not-a-real-token", 401),
        ("Service wrong-service-token", 401),
        (f"Bearer {tenant_token}", 401),
        (f"Bearer {mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=suspended.id)}", 401),
    ]:
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
        assert_error(client.post(move_url(tenant), {"tier": "A"}, format="json"), status)
        assert_error(client.get(f"/api/moves/{move.id}/"), status)
    assert_error(plain_api.post(move_url(tenant), {"tier": "A"}, format="json"), 403)  # not staff
    assert_error(plain_api.get(f"/api/moves/{move.id}/"), 403)
    viewer = _staff_with("view_tenant", "view_move")  # staff who may look but not change
    error = assert_error(viewer.post(move_url(tenant), {"tier": "A"}, format="json"), 403, "permission_denied")
    assert "tenants.change_tenant" in error["message"]
    assert viewer.get(f"/api/moves/{move.id}/").status_code == 200
    changer = _staff_with("change_tenant")  # may move, but not read moves
    assert_error(changer.get(f"/api/moves/{move.id}/"), 403, "permission_denied")
    assert_error(_staff_with().post(move_url(tenant), {"tier": "A"}, format="json"), 403)
    assert list(Move.objects.values_list("id", flat=True)) == [move.id]
