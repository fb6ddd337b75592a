"""Gateway tokens (RFC 8725 throughout): what a valid token is, and how the platform mints its own.

Device tokens are EdDSA-signed by the device's registered Ed25519 key (`kid` = device id) and issued by the device
itself (`iss` = its device id, as a self-signed client assertion names itself, RFC 7523 §3). Platform tokens are
EdDSA-signed by the platform key (`kid` = "platform", `iss` = "percolate-platform"), derived from the master key
with HKDF so every platform process that holds the master key can mint and verify them, and nothing else can. The
algorithm is pinned per key; `exp`, `iat`, `aud`, `iss` and `sub` (the tenant id) are required; lifetimes are capped.
"""

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

AUDIENCE = "percolate-gateway"
PLATFORM_KID = "platform"
PLATFORM_ISSUER = "percolate-platform"
ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30
MAX_LIFETIME = {"platform": 3600, "device": 900}
REQUIRED_CLAIMS = ["exp", "iat", "aud", "iss", "sub"]


class TokenRejected(Exception):
    """Why a token is not accepted; `status` is 401 (not authenticated) or 403 (authenticated but not allowed)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: uuid.UUID
    kind: str  # "platform" or "device"
    device_id: uuid.UUID | None
    expires_at: int


@lru_cache(maxsize=4)
def platform_private_key(master_key: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"percolate platform jwt signing v1").derive(master_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def mint_platform_token(
    *, master_key: bytes, tenant_id: uuid.UUID, ttl_seconds: int = 900, now: int | None = None
) -> str:
    if not 0 < ttl_seconds <= MAX_LIFETIME["platform"]:
        raise ValueError(f"ttl must be between 1 and {MAX_LIFETIME['platform']} seconds")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": str(tenant_id),
        "aud": AUDIENCE,
        "iss": PLATFORM_ISSUER,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, platform_private_key(master_key), algorithm=ALGORITHM, headers={"kid": PLATFORM_KID})


def unverified_kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenRejected("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenRejected("token algorithm is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("token has no key id")
    return kid


def verify(token: str, *, key: Ed25519PublicKey, kind: str, issuer: str, now: float | None = None) -> TokenClaims:
    """Signature, audience, issuer, required claims and lifetime; raises TokenRejected."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "verify_iat": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRejected("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"invalid token: {exc}") from exc
    current = time.time() if now is None else now
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise TokenRejected("exp and iat must be integers")
    if exp - iat > MAX_LIFETIME[kind]:
        raise TokenRejected("token lifetime is too long")
    if iat > current + LEEWAY_SECONDS:
        raise TokenRejected("token issued in the future")
    try:
        tenant_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise TokenRejected("token subject is not a tenant id") from exc
    return TokenClaims(tenant_id=tenant_id, kind=kind, device_id=None, expires_at=exp)
