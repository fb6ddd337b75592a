import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth.tokens import (
    AUDIENCE,
    PLATFORM_ISSUER,
    TokenRejected,
    mint_platform_token,
    platform_private_key,
    unverified_kid,
    verify,
)

MASTER = b"\x01" * 32
TENANT = uuid.uuid4()


def _public():
    return platform_private_key(MASTER).public_key()


def test_platform_token_round_trip() -> None:
    token = mint_platform_token(master_key=MASTER, tenant_id=TENANT, ttl_seconds=60)
    assert unverified_kid(token) == "platform"
    assert verify(token, key=_public(), kind="platform", issuer=PLATFORM_ISSUER).tenant_id == TENANT


def test_expired_token_refused() -> None:
    token = mint_platform_token(master_key=MASTER, tenant_id=TENANT, ttl_seconds=60, now=int(time.time()) - 3600)
    with pytest.raises(TokenRejected, match="expired"):
        verify(token, key=_public(), kind="platform", issuer=PLATFORM_ISSUER)


def test_other_key_refused() -> None:
    token = mint_platform_token(master_key=b"\x02" * 32, tenant_id=TENANT)
    with pytest.raises(TokenRejected):
        verify(token, key=_public(), kind="platform", issuer=PLATFORM_ISSUER)


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "iss", "sub"])
def test_required_claims(missing: str) -> None:
    now = int(time.time())
    claims = {"sub": str(TENANT), "aud": AUDIENCE, "iss": PLATFORM_ISSUER, "iat": now, "exp": now + 60}
    del claims[missing]
    token = jwt.encode(claims, platform_private_key(MASTER), algorithm="EdDSA", headers={"kid": "platform"})
    with pytest.raises(TokenRejected):
        verify(token, key=_public(), kind="platform", issuer=PLATFORM_ISSUER)


def test_wrong_audience_too_long_lifetime_future_iat_and_bad_subject_refused() -> None:
    now = int(time.time())
    key = platform_private_key(MASTER)
    cases = [
        {"sub": str(TENANT), "aud": "elsewhere", "iss": PLATFORM_ISSUER, "iat": now, "exp": now + 60},
        {"sub": str(TENANT), "aud": AUDIENCE, "iss": PLATFORM_ISSUER, "iat": now, "exp": now + 7200},
        {"sub": str(TENANT), "aud": AUDIENCE, "iss": PLATFORM_ISSUER, "iat": now + 600, "exp": now + 900},
        {"sub": "not-a-uuid", "aud": AUDIENCE, "iss": PLATFORM_ISSUER, "iat": now, "exp": now + 60},
        {"sub": str(TENANT), "aud": AUDIENCE, "iss": "someone-else", "iat": now, "exp": now + 60},
    ]
    for claims in cases:
        token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "platform"})
        with pytest.raises(TokenRejected):
            verify(token, key=_public(), kind="platform", issuer=PLATFORM_ISSUER)


def test_algorithm_is_pinned() -> None:
    now = int(time.time())
    claims = {"sub": str(TENANT), "aud": AUDIENCE, "iat": now, "exp": now + 60}
    for token in (
        jwt.encode(claims, "secret-secret-secret-secret-32by", algorithm="HS256", headers={"kid": "platform"}),
        jwt.encode(claims, None, algorithm="none", headers={"kid": "platform"}),  # type: ignore[arg-type]
    ):
        with pytest.raises(TokenRejected, match="algorithm"):
            unverified_kid(token)


def test_malformed_and_kidless_tokens_refused() -> None:
    with pytest.raises(TokenRejected):
        unverified_kid("not.a.token")
    token = jwt.encode({"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    with pytest.raises(TokenRejected, match="key id"):
        unverified_kid(token)


def test_mint_refuses_long_ttl() -> None:
    with pytest.raises(ValueError):
        mint_platform_token(master_key=MASTER, tenant_id=TENANT, ttl_seconds=86400)
