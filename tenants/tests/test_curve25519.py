"""Weak device keys are refused (item 3 of issue 20): small-order points, non-canonical encodings, points not on the
curve (or on X25519's twist), mixed-order points. Checked against libsodium (PyNaCl) as an independent oracle."""

import base64
import os
import random

import pytest
from nacl import bindings as sodium

from tenants.curve25519 import L, P, PointError, check_ed25519, check_x25519
from tenants.device_keys import normalize_encryption_key, normalize_signing_key
from tenants.tests.test_device_keys import b64url, ed25519_pair, x25519_raw

# The eight small-order points of edwards25519, as libsodium's blocklist encodes them (canonical forms).
ED25519_SMALL_ORDER = [
    bytes(32),  # (sqrt(-1)... y = 0): order 4
    (1).to_bytes(32, "little"),  # the identity
    (P - 1).to_bytes(32, "little"),  # y = -1: order 2
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),  # order 8
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),  # order 8
    bytes(31) + b"\x80",  # y = 0 with the sign bit: order 4
]
NON_CANONICAL_ED25519 = [
    P.to_bytes(32, "little"),  # y = p, i.e. 0 unreduced
    (P + 1).to_bytes(32, "little"),  # the identity, unreduced
    (2**255 - 1).to_bytes(32, "little"),  # y = 2^255 - 1 >= p
    ((1 << 255) | 1).to_bytes(32, "little"),  # the identity with x = 0 and the sign bit set ("negative zero")
]
# X25519 u-coordinates of small order (libsodium's blocklist, masked) and non-canonical forms.
X25519_WEAK = {
    "u = 0": 0,
    "u = 1": 1,
    "u = p - 1": P - 1,
    "u = p": P,
    "u = p + 1": P + 1,
    "order 8 (a)": 325606250916557431795983626356110631294008115727848805560023387167927233504,
    "order 8 (b)": 39382357235489614581723060781553021112529911719440698176882885853963445705823,
    "top bit set": (1 << 255) | 9,
}


@pytest.mark.parametrize("raw", ED25519_SMALL_ORDER + NON_CANONICAL_ED25519, ids=lambda raw: raw.hex()[:8])
def test_weak_ed25519_keys_are_refused_with_a_reason(raw: bytes) -> None:
    assert not sodium.crypto_core_ed25519_is_valid_point(raw)
    with pytest.raises(ValueError, match="not an acceptable Ed25519 public key: "):
        normalize_signing_key(b64url(raw))


@pytest.mark.parametrize("name", X25519_WEAK)
def test_weak_x25519_keys_are_refused_with_a_reason(name: str) -> None:
    raw = (X25519_WEAK[name] % 2**256).to_bytes(32, "little")
    with pytest.raises(
        ValueError, match=r"not an acceptable X25519 public key: (non-canonical|a point of small order)"
    ):
        normalize_encryption_key(b64url(raw))


def test_random_bytes_are_accepted_exactly_when_libsodium_calls_them_a_valid_point() -> None:
    """2,000 random 32-byte strings: about 1 in 16 is a prime-order point; the rest are refused."""
    rng = random.Random(20)
    accepted = 0
    for _ in range(2000):
        raw = rng.randbytes(32)
        try:
            check_ed25519(raw)
            ours = True
        except PointError:
            ours = False
        assert ours == sodium.crypto_core_ed25519_is_valid_point(raw), raw.hex()
        accepted += ours
    assert 50 < accepted < 250


def test_x25519_twist_points_and_mixed_order_points_are_refused() -> None:
    rng = random.Random(21)
    reasons = set()
    for _ in range(300):
        try:
            check_x25519(rng.randbytes(31) + b"\x00")
        except PointError as exc:
            reasons.add(str(exc).split(" (")[0])
    assert reasons == {"not a point on Curve25519", "not in the prime-order subgroup"}


def test_an_ed25519_key_plus_a_small_order_point_is_refused() -> None:
    """A valid key shifted by a torsion point: on the curve, canonical, not of small order, but of order 8L."""
    _, public = ed25519_pair()
    torsion = ED25519_SMALL_ORDER[3]
    mixed = sodium.crypto_core_ed25519_add(public, torsion)
    with pytest.raises(PointError, match="prime-order subgroup"):
        check_ed25519(mixed)


@pytest.mark.parametrize("_", range(50))
def test_real_keys_pass(_: int) -> None:
    check_ed25519(ed25519_pair()[1])
    check_x25519(x25519_raw())
    check_ed25519(sodium.crypto_sign_keypair()[0])
    assert L.bit_length() == 253


def test_the_api_refuses_weak_keys_with_400_and_says_why(staff_api, tenant) -> None:
    from tenants.models import Device

    good_encryption = b64url(x25519_raw())
    for raw in ED25519_SMALL_ORDER + [os.urandom(32) for _ in range(5)] + NON_CANONICAL_ED25519:
        if sodium.crypto_core_ed25519_is_valid_point(raw):
            continue
        body = {"device_name": "d", "platform": "ios", "public_key_signing": base64.b64encode(raw).decode()}
        response = staff_api.post(
            f"/api/tenants/{tenant.id}/devices/", {**body, "public_key_encryption": good_encryption}, format="json"
        )
        assert response.status_code == 400, response.content
        assert "public_key_signing" in response.json()["error"]["fields"]
    assert not Device.objects.exists()
