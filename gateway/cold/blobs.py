"""The context blob cache: a tenant's context blob, fetched and opened by the platform (gateway.platform), in memory.

An LRU bounded in bytes (the blob's opened JSON size), with single-flight loading per tenant. An entry is dropped
when the tenant's invalidation message arrives (the node writes a fresh blob whenever it moves a tenant out of hot,
and the platform publishes `tenant:<id>` when the node reports that move), so the next cold request reads the new
one. A blob that does not open (wrong key, another tenant's, truncated, flipped byte, not JSON, wrong tenant inside)
is treated as absent, counted and logged: never served. Absence is not cached, so a blob written a moment later is
seen by the next request.
"""

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.cache import SingleFlight
from gateway.platform import BlobUnreadable, Platform

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContextBlob:
    tenant_id: uuid.UUID
    doc: dict[str, Any]
    size: int


class BlobInvalid(Exception):
    """The stored blob exists but must not be served."""


def parse_blob(data: bytes, tenant_id: uuid.UUID) -> ContextBlob:
    """Pure check of an opened blob's JSON: an object naming this tenant."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BlobInvalid(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("tenant_id") != str(tenant_id):
        raise BlobInvalid("the blob names another tenant")
    return ContextBlob(tenant_id, doc, len(data))


def blob_loader(platform: Platform) -> Callable[[uuid.UUID], Awaitable[ContextBlob | None]]:
    """Loads a tenant's blob from the platform (fetched and opened there): None if absent; BlobInvalid if bad."""

    async def load(tenant_id: uuid.UUID) -> ContextBlob | None:
        try:
            data = await platform.context_blob(tenant_id)
        except BlobUnreadable as exc:
            raise BlobInvalid(str(exc)) from exc
        return None if data is None else parse_blob(data, tenant_id)

    return load


class BlobCache:
    def __init__(
        self,
        *,
        max_bytes: int,
        loader: Callable[[uuid.UUID], Awaitable[ContextBlob | None]],
    ) -> None:
        self.max_bytes = max_bytes
        self._loader = loader
        self._entries: OrderedDict[uuid.UUID, ContextBlob] = OrderedDict()
        self._flight: SingleFlight[uuid.UUID, ContextBlob | None] = SingleFlight()
        self.bytes = 0

    async def get(self, tenant_id: uuid.UUID) -> ContextBlob | None:
        entry = self._entries.get(tenant_id)
        if entry is not None:
            self._entries.move_to_end(tenant_id)
            metrics.blob_cache_lookups.labels("hit").inc()
            return entry
        return await self._flight.load(tenant_id, self._load, self._keep)

    def _keep(self, blob: ContextBlob | None) -> None:
        if blob is not None:
            self._store(blob)

    async def _load(self, tenant_id: uuid.UUID) -> ContextBlob | None:
        try:
            blob = await self._loader(tenant_id)
        except BlobInvalid as exc:
            metrics.blob_cache_lookups.labels("invalid").inc()
            log.warning("context blob of %s does not open; not served: %s", tenant_id, exc)
            return None
        except Exception:  # the object store or the key lookup failed: no blob this time
            metrics.blob_cache_lookups.labels("error").inc()
            log.exception("context blob of %s could not be fetched", tenant_id)
            return None
        metrics.blob_cache_lookups.labels("miss" if blob is not None else "absent").inc()
        return blob

    def _store(self, blob: ContextBlob) -> None:
        if blob.size > self.max_bytes:
            return  # served once, not kept: it would evict everything else
        self._drop(blob.tenant_id)
        self._entries[blob.tenant_id] = blob
        self.bytes += blob.size
        while self.bytes > self.max_bytes and self._entries:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size
        metrics.blob_cache_bytes.set(self.bytes)

    def _drop(self, tenant_id: uuid.UUID) -> None:
        old = self._entries.pop(tenant_id, None)
        if old is not None:
            self.bytes -= old.size
            metrics.blob_cache_bytes.set(self.bytes)

    def invalidate(self, tenant_id: uuid.UUID) -> None:
        self._drop(tenant_id)
        self._flight.invalidate(tenant_id)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
        metrics.blob_cache_bytes.set(0)

    def tenants(self, limit: int) -> list[uuid.UUID]:
        """The tenants whose blob is held, most recently used first, at most `limit`."""
        out: list[uuid.UUID] = []
        for tenant_id in reversed(self._entries):
            if len(out) >= limit:
                break
            out.append(tenant_id)
        return out

    def __contains__(self, tenant_id: uuid.UUID) -> bool:
        return tenant_id in self._entries
