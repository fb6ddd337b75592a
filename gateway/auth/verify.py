"""Who is calling: bearer token → (tenant route, claims), or a TokenRejected with 401/403. No I/O of its own:
device keys and tenant routes come from the caches it is given."""

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth.tokens import (
    LEEWAY_SECONDS,
    PLATFORM_ISSUER,
    PLATFORM_KID,
    TokenClaims,
    TokenRejected,
    unverified_kid,
    verify,
)
from gateway.platform import DeviceKey, TenantRoute, signing_public_key

MAX_TOKEN_BYTES = 4096
BLOCKED_STATUSES = frozenset({"suspended", "deleted"})


class Caller(NamedTuple):
    claims: TokenClaims
    route: TenantRoute
    device: DeviceKey | None = None  # the signing device of a device token, as the device cache held it


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


def named_tenant_matches(named: bytes, tenant_id: uuid.UUID) -> bool:
    """Whether an X-Percolate-Tenant header names this tenant."""
    return named.decode("latin-1").strip().lower() == str(tenant_id)


class VerifiedTokens:
    """Tokens whose signature and claims were checked, kept until they expire, so a client's next request costs a
    dict lookup instead of an Ed25519 verification. Bounded. Device revocation and tenant status are still checked
    on every request."""

    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[str, TokenClaims] = {}
        self._max = max_entries
        self._clock = clock

    def get(self, token: str) -> TokenClaims | None:
        claims = self._entries.get(token)
        if claims is not None and claims.expires_at + LEEWAY_SECONDS < self._clock():
            del self._entries[token]
            return None
        return claims

    def put(self, token: str, claims: TokenClaims) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()  # cheap and rare; the next requests re-verify
        self._entries[token] = claims


async def _device(device_id: uuid.UUID, device_keys: Callable[[uuid.UUID], Awaitable[DeviceKey | None]]) -> DeviceKey:
    device = await device_keys(device_id)
    if device is None:
        raise TokenRejected("unknown signing key")
    return device


async def _claims(
    token: str, platform_key: Ed25519PublicKey, device_keys: Callable[[uuid.UUID], Awaitable[DeviceKey | None]]
) -> TokenClaims:
    kid = unverified_kid(token)
    if kid == PLATFORM_KID:
        return verify(token, key=platform_key, kind="platform", issuer=PLATFORM_ISSUER)
    try:
        device_id = uuid.UUID(kid)
    except ValueError as exc:
        raise TokenRejected("unknown signing key") from exc
    device = await _device(device_id, device_keys)
    claims = verify(token, key=signing_public_key(device.public_key_signing), kind="device", issuer=kid)
    if claims.tenant_id != device.tenant_id:
        raise TokenRejected("token tenant does not own this device", status=403)
    return TokenClaims(claims.tenant_id, "device", device.device_id, claims.expires_at)


async def authenticate(
    authorization: list[bytes],
    *,
    named_tenant: bytes | None,
    platform_key: Ed25519PublicKey,
    device_keys: Callable[[uuid.UUID], Awaitable[DeviceKey | None]],
    routes: Callable[[uuid.UUID], Awaitable[TenantRoute | None]],
    verified: VerifiedTokens | None = None,
) -> Caller:
    token = bearer_token(authorization)
    claims = verified.get(token) if verified is not None else None
    if claims is None:
        claims = await _claims(token, platform_key, device_keys)
        if verified is not None:
            verified.put(token, claims)
    device = None
    if claims.device_id is not None:
        device = await _device(claims.device_id, device_keys)
        if device.revoked:
            raise TokenRejected("device revoked", status=403)
    if named_tenant is not None and not named_tenant_matches(named_tenant, claims.tenant_id):
        raise TokenRejected("token is for another tenant", status=403)
    route = await routes(claims.tenant_id)
    if route is None:
        raise TokenRejected("unknown tenant", status=403)
    if route.status in BLOCKED_STATUSES:
        raise TokenRejected(f"tenant is {route.status}", status=403)
    return Caller(claims=claims, route=route, device=device)
