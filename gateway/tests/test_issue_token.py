import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from gateway.auth.tokens import PLATFORM_ISSUER, platform_private_key, unverified_kid, verify
from tenants.services import tenant_suspend


def test_issue_token_by_email_verifies_for_the_tenant(tenant, capsys) -> None:
    call_command("issue_token", "OWNER@example.com", "--ttl", "60")
    token = capsys.readouterr().out.strip()
    assert unverified_kid(token) == "platform"
    claims = verify(
        token,
        key=platform_private_key(settings.PLATFORM_MASTER_KEY).public_key(),
        kind="platform",
        issuer=PLATFORM_ISSUER,
    )
    assert claims.tenant_id == tenant.id


@pytest.mark.django_db
def test_issue_token_refuses_unknown_bad_ttl_and_suspended(tenant, actor) -> None:
    with pytest.raises(CommandError, match="no tenant"):
        call_command("issue_token", "nobody@example.com")
    with pytest.raises(CommandError, match="no tenant"):
        call_command("issue_token", "zzz")
    with pytest.raises(CommandError, match="ttl"):
        call_command("issue_token", str(tenant.id), "--ttl", "999999")
    tenant_suspend(tenant_id=tenant.id, actor=actor)
    with pytest.raises(CommandError, match="suspended"):
        call_command("issue_token", str(tenant.id))
