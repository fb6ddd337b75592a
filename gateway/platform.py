"""Everything the gateway reads or writes of the platform, in one place: the whole surface, so a reader sees it and a
test can hand the gateway another `Platform` (`Gateway(platform=...)`).

Reads: a tenant's route (tier, status, state, generation, tier move), many routes at once (gateway.cold.routes), a
device's signing key, a tenant's context blob opened with the tenant's key, and a database ping for `/readyz`.
Writes: one, a restore request for an archived tenant. Invalidations arrive on the Redis channel named here.
Every call runs the platform's (blocking, Django) code in a worker thread (percolate_platform.db_pool), never on the
event loop. Nothing else in `gateway/` imports `tenants`, `archival` or the ORM.
"""

import logging
import uuid

from django.db import connection

from archival import objectstore
from archival.services import restore_request
from core import sealed
from core.audit import Actor
from core.errors import Conflict
from percolate_platform.db_pool import db_call
from tenants.device_keys import signing_public_key as signing_public_key
from tenants.events import CHANNEL
from tenants.keys import tenant_data_key
from tenants.selectors import DeviceKey as DeviceKey
from tenants.selectors import TenantRoute as TenantRoute
from tenants.selectors import device_key, tenant_route, tenant_routes

log = logging.getLogger(__name__)

INVALIDATION_CHANNEL = CHANNEL  # `tenant:<id>` and `device:<id>` messages (tenants.events)


class BlobUnreadable(Exception):
    """The tenant's stored context blob exists but does not open (wrong key, another tenant's, damaged)."""


def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _open_context_blob(tenant_id: uuid.UUID) -> bytes | None:
    """Blocking: the tenant's context blob, fetched and opened with its key; None if there is none."""
    try:
        with objectstore.open_reader(objectstore.context_key(tenant_id)) as reader:
            raw = reader.read()
    except objectstore.ObjectMissing:
        return None

    def key_for(key_id: str) -> bytes:
        return tenant_data_key(tenant_id=tenant_id, key_id=key_id)[1]

    try:
        return sealed.open_bytes(blob=raw, tenant_id=tenant_id, kind=sealed.KIND_CONTEXT, key_for=key_for)
    except Exception as exc:  # SealedError, or the key it names does not exist (NotFound/Conflict)
        raise BlobUnreadable(f"{type(exc).__name__}: {exc}") from exc


def _request_restore(tenant_id: uuid.UUID) -> str:
    """Blocking: ask for a restore; 'requested', or 'already' if one is active (or not possible)."""
    try:
        restore_request(tenant_id=tenant_id, actor=Actor.system("gateway"))
    except Conflict as exc:
        log.info("restore of %s not requested: %s", tenant_id, exc)
        return "already"
    return "requested"


class Platform:
    """The platform's data as the gateway uses it; every method is awaited off the event loop."""

    async def tenant_route(self, tenant_id: uuid.UUID) -> TenantRoute | None:
        return await db_call(tenant_route)(tenant_id=tenant_id)

    async def tenant_routes(self, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantRoute]:
        return await db_call(tenant_routes)(tenant_ids=tenant_ids)

    async def device_key(self, device_id: uuid.UUID) -> DeviceKey | None:
        return await db_call(device_key)(device_id=device_id)

    async def context_blob(self, tenant_id: uuid.UUID) -> bytes | None:
        """The opened (decrypted) blob; None if absent; BlobUnreadable if it does not open."""
        return await db_call(_open_context_blob)(tenant_id)

    async def request_restore(self, tenant_id: uuid.UUID) -> str:
        """'requested', or 'already' when the platform refuses a second concurrent restore."""
        return await db_call(_request_restore)(tenant_id)

    async def ping_database(self) -> None:
        await db_call(_ping_database)()
