"""Who is calling: bearer token → (tenant route, claims), or a TokenRejected with 401/403. No I/O of its own:
device keys and tenant routes come from the caches it is given."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.tokens import PLATFORM_KID, TokenClaims, TokenRejected, unverified_kid, verify
from tenants.device_keys import signing_public_key
from tenants.selectors import DeviceKey, TenantRoute

MAX_TOKEN_BYTES = 4096
BLOCKED_STATUSES = frozenset({"suspended", "deleted"})


@dataclass(frozen=True)
class Caller:
    claims: TokenClaims
    route: TenantRoute


def bearer_token(authorization: list[bytes]) -> str:
    if not authorization:
        raise TokenRejected("missing bearer token")
    if len(authorization) > 1:
        raise TokenRejected("more than one Authorization header")
    scheme, _, token = authorization[0].partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        raise TokenRejected("Authorization must be 'Bearer <token>'")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token too large")
    try:
        return token.strip().decode("ascii")
    except UnicodeDecodeError as exc:
        raise TokenRejected("malformed token") from exc


async def authenticate(
    authorization: list[bytes],
    *,
    named_tenant: bytes | None,
    platform_key: Ed25519PublicKey,
    device_keys: Callable[[uuid.UUID], Awaitable[DeviceKey | None]],
    routes: Callable[[uuid.UUID], Awaitable[TenantRoute | None]],
) -> Caller:
    token = bearer_token(authorization)
    kid = unverified_kid(token)
    device: DeviceKey | None = None
    if kid == PLATFORM_KID:
        claims = verify(token, key=platform_key, kind="platform")
    else:
        try:
            device_id = uuid.UUID(kid)
        except ValueError as exc:
            raise TokenRejected("unknown signing key") from exc
        device = await device_keys(device_id)
        if device is None:
            raise TokenRejected("unknown signing key")
        claims = verify(token, key=signing_public_key(device.public_key_signing), kind="device")
        if device.revoked:
            raise TokenRejected("device revoked", status=403)
        if claims.tenant_id != device.tenant_id:
            raise TokenRejected("token tenant does not own this device", status=403)
        claims = TokenClaims(claims.tenant_id, "device", device.device_id, claims.expires_at)
    if named_tenant is not None and named_tenant.decode("latin-1").strip().lower() != str(claims.tenant_id):
        raise TokenRejected("token is for another tenant", status=403)
    route = await routes(claims.tenant_id)
    if route is None:
        raise TokenRejected("unknown tenant", status=403)
    if route.status in BLOCKED_STATUSES:
        raise TokenRejected(f"tenant is {route.status}", status=403)
    return Caller(claims=claims, route=route)
