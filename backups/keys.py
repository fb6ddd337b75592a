"""The backup key: derived from the platform master key, so a backup is as safe as the tenant keys inside it.

A platform backup holds every tenant's wrapped data key; sealing it under a key derived from the master key (HKDF,
its own label) means a leaked backup object reveals nothing without the master key, and restoring needs nothing but
the master key and the object store (the database, which is what was lost, is not needed to open it). The key id in
the sealed header names the master key by fingerprint, so after a rotation older backups still open while the
previous key is configured in `PLATFORM_MASTER_KEY_PREVIOUS`.

The sealed format binds a tenant id and a kind into every object: backups use a fixed platform id (no tenant has it:
tenant ids are random uuid4, this one is a uuid5) and kind "archive"; the HKDF label keeps a tenant key and the backup
key apart even so.
"""

import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.sealed import SealedError
from percolate_platform.master_key import fingerprint, master_keyring

PLATFORM_ID = uuid.uuid5(uuid.NAMESPACE_URL, "percolate:platform-backup")
KEY_ID_PREFIX = "platform-backup:"
_INFO = b"percolate platform backup key v1"


def derive(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master_key)


def current() -> tuple[str, bytes]:
    """(key id, key) under the configured master key: what new backups are sealed with."""
    from django.conf import settings

    master = settings.PLATFORM_MASTER_KEY
    return KEY_ID_PREFIX + fingerprint(master), derive(master)


def key_for(key_id: str) -> bytes:
    """The backup key a sealed header names; SealedError if its master key is not configured."""
    if not key_id.startswith(KEY_ID_PREFIX):
        raise SealedError(f"not a platform backup key id: {key_id}")
    master = master_keyring().get(key_id[len(KEY_ID_PREFIX) :])
    if master is None:
        raise SealedError(
            f"backup sealed under master key {key_id[len(KEY_ID_PREFIX) :]}, which is neither PLATFORM_MASTER_KEY "
            "nor in PLATFORM_MASTER_KEY_PREVIOUS"
        )
    return derive(master)
