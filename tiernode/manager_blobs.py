"""A tenant's context blob as the manager writes it on every move out of hot: a snapshot of the store (recent
messages, facts, preferences), sealed with the tenant's data key from the platform, put in the object store.

The blob is a cache (the data is on the volume): every failure is counted and logged, never raised, and a shutdown
past its deadline (``cut``) abandons the blobs still being written so the tenants are reported all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from tiernode.blob import ObjectStore, build_context, context_key, seal_context
from tiernode.config import NodeConfig
from tiernode.manager_tasks import DiskThreads
from tiernode.metrics import NodeMetrics
from tiernode.platform_client import PlatformRefused, PlatformUnavailable
from tiernode.store import TenantStore, tenant_path
from tiernode.tenant_record import CLOSING, HOT, Tenant

log = logging.getLogger("tiernode.manager")

KeyFetcher = Callable[[uuid.UUID], Awaitable[tuple[str, bytes]]]
Snapshot = dict[str, Any]


class BlobWriter:
    def __init__(
        self,
        cfg: NodeConfig,
        *,
        metrics: NodeMetrics,
        disk: DiskThreads,
        open_store: Callable[..., TenantStore],
        object_store: ObjectStore | None,
        key_fetcher: KeyFetcher | None,
    ) -> None:
        self._cfg = cfg
        self._metrics = metrics
        self._disk = disk
        self._open_store = open_store
        self._object_store = object_store
        self._key_fetcher = key_fetcher
        self._cut = asyncio.Event()

    # -- snapshots (blocking: run them on the disk threads) -------------------------------------------------------

    def snapshot_and_close(self, store: TenantStore) -> Snapshot | None:
        try:
            snapshot = store.context_snapshot(self._cfg.recent_messages_in_blob)
        except Exception:
            log.exception("context snapshot of %s failed", store.tenant_id)
            snapshot = None
        store.close()
        return snapshot

    def snapshot_from_disk(self, tenant_id: uuid.UUID) -> Snapshot | None:
        """The snapshot of a tenant this pod does not hold open, if its data is on this pod's data root."""
        if not tenant_path(self._cfg.data_root, tenant_id).is_dir():
            return None
        return self.snapshot_and_close(self._open_store(self._cfg.data_root, tenant_id))

    # -- the data key ------------------------------------------------------------------------------------------------

    @property
    def wants_keys(self) -> bool:
        """Whether keys are worth fetching ahead (there is a key source and somewhere to put blobs)."""
        return self._key_fetcher is not None and self._object_store is not None

    async def fetch_key_ahead(self, t: Tenant) -> None:
        """Fetch the key while ``t`` is hot, so its blob needs no platform call when it goes (held in memory only
        while the tenant is hot)."""
        assert self._key_fetcher is not None
        try:
            key = await self._key_fetcher(t.tenant_id)
        except (PlatformUnavailable, PlatformRefused) as exc:
            log.info("no data key for %s yet (%s); will ask again when a blob is written", t.tenant_id, exc)
            return
        if t.state in (HOT, CLOSING):
            t.key = key

    # -- writing -----------------------------------------------------------------------------------------------------

    def cut(self) -> None:
        """A shutdown passed its deadline: abandon the blobs being written, write no more."""
        self._cut.set()

    async def write_unless_cut(self, t: Tenant, snapshot: Snapshot) -> str:
        """``write``, abandoned at any step (key fetch, seal, upload; an S3 PUT is all or nothing) by ``cut``."""
        if self._cut.is_set():
            return "skipped: drain deadline"
        writing = asyncio.ensure_future(self.write(t, snapshot))
        cut = asyncio.ensure_future(self._cut.wait())
        try:
            await asyncio.wait({writing, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
        if writing.done():
            return writing.result()
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        self._metrics.context_blobs.labels(result="drain_deadline").inc()
        return "skipped: drain deadline"

    async def write(self, t: Tenant, snapshot: Snapshot) -> str:
        """Seal and store the blob; what happened to it: written, skipped (and why) or failed."""
        if self._object_store is None:
            return "skipped: no object store"
        key = t.key
        if key is None:
            if self._key_fetcher is None:
                return "skipped: no key source"
            try:
                key = await asyncio.wait_for(self._key_fetcher(t.tenant_id), self._cfg.platform_timeout_seconds * 2)
            except PlatformRefused as exc:
                self._metrics.context_blobs.labels(result="no_key").inc()
                return f"skipped: {exc.code}"  # mobile_only tenants: the platform may not read their memory
            except (PlatformUnavailable, TimeoutError) as exc:
                self._metrics.context_blobs.labels(result="no_key").inc()
                log.warning("no context blob for %s: data key unavailable (%s)", t.tenant_id, exc)
                return "skipped: key unavailable"
        try:
            data = build_context(snapshot, generation=t.generation, pod_id=self._cfg.pod_id)
            seal = partial(seal_context, data, tenant_id=t.tenant_id, key_id=key[0], key=key[1])
            sealed = await self._disk.run(seal)
            await self._object_store.put(context_key(t.tenant_id), sealed)
        except Exception:
            self._metrics.context_blobs.labels(result="failed").inc()
            log.exception("writing the context blob of %s failed", t.tenant_id)
            return "failed"
        self._metrics.context_blobs.labels(result="written").inc()
        t.blob_current = True
        return "written"
