"""Outsider cases for gateway authentication, against real tenants and devices in PostgreSQL."""

import asyncio
import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings

from core.audit import Actor
from gateway.auth.tokens import AUDIENCE, TokenRejected, mint_platform_token, platform_private_key
from gateway.auth.verify import Caller, authenticate
from tenants.device_services import device_register, device_revoke
from tenants.models import Tenant
from tenants.selectors import device_key, tenant_route
from tenants.services import tenant_suspend

pytestmark = pytest.mark.django_db(transaction=True)  # lookups run in another thread, as in the gateway


def _device(tenant: Tenant, actor: Actor) -> tuple[uuid.UUID, Ed25519PrivateKey]:
    import base64

    private = Ed25519PrivateKey.generate()
    enc = X25519PrivateKey.generate()

    def b64(k: object) -> str:
        raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[attr-defined]
        return base64.urlsafe_b64encode(raw).decode()

    device = device_register(
        tenant_id=tenant.id,
        device_name="phone",
        platform="ios",
        public_key_signing=b64(private),
        public_key_encryption=b64(enc),
        actor=actor,
    )
    return device.id, private


def _device_token(device_id: uuid.UUID, private: Ed25519PrivateKey, tenant_id: uuid.UUID, **over: object) -> str:
    now = int(time.time())
    claims = {"sub": str(tenant_id), "aud": AUDIENCE, "iss": str(device_id), "iat": now, "exp": now + 300, **over}
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": str(device_id)})


def _auth(token: str | None, named: bytes | None = None) -> Caller:
    async def devices(device_id: uuid.UUID):
        return await sync_to_async(device_key)(device_id=device_id)

    async def routes(tenant_id: uuid.UUID):
        return await sync_to_async(tenant_route)(tenant_id=tenant_id)

    header = [f"Bearer {token}".encode()] if token else []
    return asyncio.run(
        authenticate(
            header,
            named_tenant=named,
            platform_key=platform_private_key(settings.PLATFORM_MASTER_KEY).public_key(),
            device_keys=devices,
            routes=routes,
        )
    )


def _rejected(status: int, fn: Callable[[], object]) -> str:
    with pytest.raises(TokenRejected) as info:
        fn()
    assert info.value.status == status
    return info.value.message


def test_device_and_platform_tokens_accepted(tenant: Tenant, actor: Actor) -> None:
    device_id, private = _device(tenant, actor)
    caller = _auth(_device_token(device_id, private, tenant.id))
    assert caller.route.tenant_id == tenant.id and caller.claims.device_id == device_id
    platform = mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=tenant.id)
    assert _auth(platform, named=str(tenant.id).encode()).claims.kind == "platform"


def test_no_token_malformed_and_expired_are_401(tenant: Tenant, actor: Actor) -> None:
    device_id, private = _device(tenant, actor)
    _rejected(401, lambda: _auth(None))
    _rejected(401, lambda: _auth("garbage"))
    expired = _device_token(device_id, private, tenant.id, iat=int(time.time()) - 4000, exp=int(time.time()) - 3000)
    assert "expired" in _rejected(401, lambda: _auth(expired))
    _rejected(401, lambda: _auth(_device_token(uuid.uuid4(), private, tenant.id)))  # unknown key


@pytest.mark.parametrize("issuer", ["percolate-platform", "someone-else", ""])
def test_a_device_token_issued_by_anyone_but_the_device_is_401(tenant: Tenant, actor: Actor, issuer) -> None:
    device_id, private = _device(tenant, actor)
    token = _device_token(device_id, private, tenant.id, iss=issuer)
    _rejected(401, lambda: _auth(token))
    other_device, _ = _device(tenant, actor)  # another device of the same tenant is not this token's issuer either
    _rejected(401, lambda: _auth(_device_token(device_id, private, tenant.id, iss=str(other_device))))


def test_a_device_token_without_an_issuer_is_401(tenant: Tenant, actor: Actor) -> None:
    device_id, private = _device(tenant, actor)
    now = int(time.time())
    claims = {"sub": str(tenant.id), "aud": AUDIENCE, "iat": now, "exp": now + 300}
    token = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": str(device_id)})
    _rejected(401, lambda: _auth(token))


def test_token_signed_by_another_key_is_401(tenant: Tenant, actor: Actor) -> None:
    device_id, _ = _device(tenant, actor)
    _rejected(401, lambda: _auth(_device_token(device_id, Ed25519PrivateKey.generate(), tenant.id)))


def test_another_tenants_token_and_named_tenant_mismatch_are_403(make_tenant, actor) -> None:
    owner, outsider = make_tenant(), make_tenant()
    device_id, private = _device(owner, actor)
    _rejected(403, lambda: _auth(_device_token(device_id, private, outsider.id)))
    token = _device_token(device_id, private, owner.id)
    _rejected(403, lambda: _auth(token, named=str(outsider.id).encode()))


def test_suspended_tenant_and_revoked_device_are_403(tenant: Tenant, actor: Actor) -> None:
    device_id, private = _device(tenant, actor)
    token = _device_token(device_id, private, tenant.id)
    device_revoke(device_id=device_id, actor=actor)
    assert "revoked" in _rejected(403, lambda: _auth(token))
    other_id, other_private = _device(tenant, actor)
    tenant_suspend(tenant_id=tenant.id, actor=actor)
    assert "suspended" in _rejected(403, lambda: _auth(_device_token(other_id, other_private, tenant.id)))


def test_a_cached_token_still_sees_revocation_and_suspension(tenant: Tenant, actor: Actor) -> None:
    from gateway.auth.verify import VerifiedTokens

    cache = VerifiedTokens()
    device_id, private = _device(tenant, actor)
    token = _device_token(device_id, private, tenant.id)

    def auth() -> Caller:
        async def devices(device_id: uuid.UUID):
            return await sync_to_async(device_key)(device_id=device_id)

        async def routes(tenant_id: uuid.UUID):
            return await sync_to_async(tenant_route)(tenant_id=tenant_id)

        return asyncio.run(
            authenticate(
                [f"Bearer {token}".encode()],
                named_tenant=None,
                platform_key=platform_private_key(settings.PLATFORM_MASTER_KEY).public_key(),
                device_keys=devices,
                routes=routes,
                verified=cache,
            )
        )

    assert auth().claims.device_id == device_id
    assert cache.get(token) is not None
    device_revoke(device_id=device_id, actor=actor)
    assert "revoked" in _rejected(403, auth)


def test_verified_tokens_expire_and_stay_bounded() -> None:
    from gateway.auth.tokens import TokenClaims
    from gateway.auth.verify import VerifiedTokens

    now = [1000.0]
    cache = VerifiedTokens(max_entries=2, clock=lambda: now[0])
    claims = TokenClaims(uuid.uuid4(), "platform", None, expires_at=1010)
    cache.put("a", claims)
    assert cache.get("a") == claims
    now[0] = 1010 + 31
    assert cache.get("a") is None
    for key in "bcd":
        cache.put(key, claims)
    assert len(cache._entries) <= 2
