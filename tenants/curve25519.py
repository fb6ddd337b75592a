"""Point checks on edwards25519 / Curve25519 that `cryptography` does not make: canonical encoding, on the curve,
not of small order, in the prime-order subgroup.

OpenSSL (behind `cryptography`) loads any 32 bytes as an Ed25519 or X25519 public key; it decodes nothing until a
signature is verified or a secret derived, and it never checks the point's order. A small-order signing key (the
identity, all zeros, ...) lets anyone forge signatures that verify; an X25519 key of small order makes every shared
secret predictable. Pure Python, no Django; about a millisecond per key (one scalar multiplication by the group
order). Arithmetic follows RFC 8032 (extended coordinates, the complete addition law).
"""

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the prime-order subgroup
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z
IDENTITY: Point = (0, 1, 1, 0)


class PointError(ValueError):
    """Why 32 bytes are not an acceptable public key (the message says which check failed)."""


def _add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = t1 * 2 * D * t2 % P
    dd = z1 * 2 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar: int, point: Point) -> Point:
    result = IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: Point) -> bool:
    x, y, z, _ = point
    return x % P == 0 and (y - z) % P == 0


def _recover_x(y: int, sign: int) -> int:
    """x for y on edwards25519 with the given sign bit; PointError if there is none."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * pow(v, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        raise PointError("not a point on the curve")
    if x == 0 and sign:
        raise PointError("non-canonical encoding (x = 0 with the sign bit set)")
    return P - x if x & 1 != sign else x


def _check_order(point: Point) -> None:
    if _is_identity(_mul(8, point)):
        raise PointError("a point of small order")
    if not _is_identity(_mul(L, point)):
        raise PointError("not in the prime-order subgroup (a mixed-order point)")


def check_ed25519(raw: bytes) -> None:
    """Refuse an Ed25519 public key that is not the canonical encoding of a prime-order point."""
    if len(raw) != 32:
        raise PointError(f"must be 32 bytes, got {len(raw)}")
    encoded = int.from_bytes(raw, "little")
    y, sign = encoded & (2**255 - 1), encoded >> 255
    if y >= P:
        raise PointError("non-canonical encoding (y is not reduced modulo p)")
    x = _recover_x(y, sign)
    _check_order((x, y, 1, x * y % P))


def check_x25519(raw: bytes) -> None:
    """Refuse an X25519 public key (a u-coordinate) that is non-canonical, on the twist, or not of prime order."""
    if len(raw) != 32:
        raise PointError(f"must be 32 bytes, got {len(raw)}")
    u = int.from_bytes(raw, "little")
    if u >= P:  # the top bit set, or u in [p, 2^255)
        raise PointError("non-canonical encoding (u is not reduced modulo p)")
    if u == P - 1:  # the birational map below is undefined there; u = -1 has order 2 (on the twist)
        raise PointError("a point of small order")
    y = (u - 1) * pow(u + 1, -1, P) % P  # Curve25519 u -> edwards25519 y; the map preserves the group structure
    try:
        x = _recover_x(y, 0)
    except PointError:
        raise PointError("not a point on Curve25519 (a point on its twist)") from None
    _check_order((x, y, 1, x * y % P))
