"""The overview page: linked from the admin index, staff with the view permission only, the snapshot rendered in."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User


def test_admin_index_links_the_overview(admin_client_root: Client) -> None:
    response = admin_client_root.get("/admin/")
    assert response.status_code == 200
    assert b'href="/admin/overview/"' in response.content


def test_page_carries_the_snapshot_and_the_websocket_port(admin_client_root: Client, make_tenant, settings) -> None:
    settings.OVERVIEW_WEBSOCKET_PORT = 8001
    make_tenant(tier="A")
    response = admin_client_root.get("/admin/overview/")
    assert response.status_code == 200
    body = response.content.decode()
    data = json.loads(body.split('id="overview-data" type="application/json">')[1].split("</script>")[0])
    assert data["tenants"]["rows"]["A"]["cold"] == 1
    assert "const port = 8001 ||" in body


@pytest.mark.parametrize("who", ["anonymous", "non-staff", "staff without view_tenant"])
def test_outsiders_do_not_see_the_page(who: str, db) -> None:
    client = Client()
    if who == "non-staff":
        client.force_login(User.objects.create_user("plain", "plain@example.com", "plain-password-123"))
    elif who == "staff without view_tenant":
        client.force_login(User.objects.create_user("s", "s@example.com", "s-password-1234", is_staff=True))
    response = client.get("/admin/overview/")
    if who == "staff without view_tenant":
        assert response.status_code == 403
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_staff_with_only_the_view_permission_sees_it(db) -> None:
    user = User.objects.create_user("viewer", "viewer@example.com", "viewer-password-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tenant", content_type__app_label="tenants"))
    client = Client()
    client.force_login(user)
    assert client.get("/admin/overview/").status_code == 200


def test_moves_in_flight_and_rolled_back_are_listed(admin_client_root: Client, make_tenant) -> None:
    from core.audit import Actor
    from moves.services import tenant_move

    tenant = make_tenant(tier="C")
    move = tenant_move(tenant_id=tenant.id, tier="A", actor=Actor.system("test"), enqueue=False)
    from overview.selectors import tier_moves

    moves = tier_moves()
    assert moves["counts"]["pending"] == 1
    assert moves["recent"][0]["id"] == str(move.id) and moves["recent"][0]["to_tier"] == "A"
