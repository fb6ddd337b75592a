"""Loading the platform master key, which wraps every tenant's data key.

Production must give `PLATFORM_MASTER_KEY` (or `PLATFORM_MASTER_KEY_FILE`): 32 bytes as base64 or hex. Only the local
embedded default (DEBUG) may fall back to a key file it creates under the var directory, so that `make run` works on a
fresh machine; anything too short or malformed is refused at start-up, whatever the mode.
"""

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

MASTER_KEY_BYTES = 32
LOCAL_KEY_FILE = "master.key"


def decode_master_key(value: str) -> bytes:
    """Decode a 32-byte key given as 64 hex characters or base64; raise ImproperlyConfigured otherwise."""
    text = value.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * MASTER_KEY_BYTES else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ImproperlyConfigured("PLATFORM_MASTER_KEY is not valid hex or base64") from exc
    if len(raw) != MASTER_KEY_BYTES:
        raise ImproperlyConfigured(
            f"PLATFORM_MASTER_KEY must be {MASTER_KEY_BYTES} bytes (64 hex characters or 44 base64), got {len(raw)}"
        )
    return raw


def load_master_key(value: str, var_dir: Path, *, allow_local: bool) -> bytes:
    if value:
        return decode_master_key(value)
    if not allow_local:
        raise ImproperlyConfigured("PLATFORM_MASTER_KEY (or PLATFORM_MASTER_KEY_FILE) must be set in production")
    path = var_dir / LOCAL_KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(MASTER_KEY_BYTES))
    return decode_master_key(path.read_text())


def fingerprint(key: bytes) -> str:
    """The name of a master key (stored beside every key it wraps): not secret, and it never reveals the key."""
    return hashlib.sha256(key).hexdigest()[:16]


def decode_previous_keys(values: list[str]) -> list[bytes]:
    """`PLATFORM_MASTER_KEY_PREVIOUS`: keys still accepted for unwrapping during a rotation, never for wrapping."""
    return [decode_master_key(value) for value in values if value.strip()]


def master_keyring() -> dict[str, bytes]:
    """Fingerprint -> key for the configured master key and the previous ones (the current key wins a clash)."""
    from django.conf import settings

    keys = [*getattr(settings, "PLATFORM_MASTER_KEY_PREVIOUS", []), settings.PLATFORM_MASTER_KEY]
    return {fingerprint(key): key for key in keys}
