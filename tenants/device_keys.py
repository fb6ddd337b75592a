"""Validation of a device's public keys: Ed25519 for signing, X25519 for encryption, nothing else.

Keys arrive as 32 raw bytes in base64/base64url (padded or not) or as a PEM SubjectPublicKeyInfo block, and are
stored as unpadded base64url of the raw bytes. `cryptography` loads the key (type, length, PEM structure); the point
itself is checked by `tenants.curve25519` (canonical, on the curve, prime order), which `cryptography` does not do.
"""

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from tenants.curve25519 import PointError, check_ed25519, check_x25519

RAW_KEY_BYTES = 32
PublicKey = Ed25519PublicKey | X25519PublicKey


def _decode_raw(text: str) -> bytes:
    standard = text.replace("-", "+").replace("_", "/")
    try:
        # validate=True: characters outside the alphabet are an error, not silently dropped.
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not PEM and not base64") from exc
    if len(raw) != RAW_KEY_BYTES:
        raise ValueError(f"must be {RAW_KEY_BYTES} raw bytes, got {len(raw)}")
    return raw


_POINT_CHECKS = {Ed25519PublicKey: check_ed25519, X25519PublicKey: check_x25519}


def _normalize(text: object, key_class: type[PublicKey], name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not an {name} public key: empty")
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, key_class):
                raise ValueError(f"PEM holds a {type(key).__name__}")
        else:
            key = key_class.from_public_bytes(_decode_raw(text))
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        _POINT_CHECKS[key_class](raw)
    except PointError as exc:
        raise ValueError(f"not an acceptable {name} public key: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an {name} public key: {exc}") from exc
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def normalize_signing_key(text: object) -> str:
    """The Ed25519 key as unpadded base64url; ValueError for anything that is not one."""
    return _normalize(text, Ed25519PublicKey, "Ed25519")


def normalize_encryption_key(text: object) -> str:
    """The X25519 key as unpadded base64url; ValueError for anything that is not one."""
    return _normalize(text, X25519PublicKey, "X25519")


def signing_public_key(stored: str) -> Ed25519PublicKey:
    """The verifier for a stored (normalised) signing key."""
    return Ed25519PublicKey.from_public_bytes(_decode_raw(stored))
