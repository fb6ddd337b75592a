"""The node's side of the platform's internal API: state reports (background, retried, superseded) and key fetches.

Plain ``urllib`` on a small dedicated thread pool: a handful of calls per tenant transition do not justify an
async HTTP client dependency, and the pool keeps a slow platform from starving the node's disk threads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tiernode.platform")


class PlatformUnavailable(Exception):
    """Network error, timeout or 5xx: worth retrying."""


class PlatformRefused(Exception):
    """A 4xx answer: retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class PlatformClient:
    def __init__(self, base_url: str, token: str, pod_id: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.pod_id = pod_id
        self.timeout = timeout
        # State reports get threads of their own: a slow key endpoint must not hold them up (at shutdown the reports
        # are what the platform needs, the keys only serve context blobs).
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="platform-keys")
        self._report_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="platform-reports")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def _request_sync(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.base_url.startswith(("http://", "https://")):
            raise PlatformUnavailable(f"PLATFORM_URL {self.base_url!r} is not an http(s) URL")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310 - scheme checked
        req.add_header("Authorization", f"Service {self.token}")
        req.add_header("X-Percolate-Service", f"tier-node:{self.pod_id}"[:64])
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code >= 500 or exc.code == 429:
                raise PlatformUnavailable(f"{method} {path}: HTTP {exc.code}") from exc
            code, message = _error_of(raw, exc.code)
            raise PlatformRefused(exc.code, code, message) from exc
        except (OSError, urllib.error.URLError) as exc:
            raise PlatformUnavailable(f"{method} {path}: {exc}") from exc
        try:
            return json.loads(raw) if raw else {}
        except ValueError as exc:
            raise PlatformUnavailable(f"{method} {path}: answer is not JSON") from exc

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, pool: ThreadPoolExecutor | None = None
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool or self._pool, self._request_sync, method, path, body)

    async def report_state(self, tenant_id: uuid.UUID, state: str, generation: int) -> dict[str, Any]:
        body = {"state": state, "generation": generation, "pod_id": self.pod_id}
        return await self._request("POST", f"/api/internal/tenants/{tenant_id}/state", body, pool=self._report_pool)

    async def fetch_key(self, tenant_id: uuid.UUID, key_id: str | None = None) -> tuple[str, bytes]:
        query = f"?key_id={urllib.parse.quote(key_id)}" if key_id else ""
        doc = await self._request("GET", f"/api/internal/tenants/{tenant_id}/key{query}")
        try:
            key = base64.b64decode(doc["key"], validate=True)
            found_id = str(doc["key_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformUnavailable("key answer is malformed") from exc
        if len(key) != 32:
            raise PlatformUnavailable("key answer is not a 32-byte key")
        return found_id, key

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._report_pool.shutdown(wait=False, cancel_futures=True)


def _error_of(raw: bytes, status: int) -> tuple[str, str]:
    try:
        err = json.loads(raw)["error"]
        return str(err.get("code", status)), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return str(status), raw[:200].decode(errors="replace")


@dataclass(frozen=True)
class Report:
    tenant_id: uuid.UUID
    state: str
    generation: int


class StateReporter:
    """Sends each tenant's latest state in the background.

    One sender task per tenant with a pending report: a newer report for the tenant replaces an unsent older one
    (the platform only needs the latest, and every hot/warm/cold move between them is allowed); a platform that is
    down is retried with capped exponential backoff and jitter; a 4xx is final. ``stale_generation`` means another
    pod owns the tenant now, and ``on_fenced`` is told so the node lets go of it.
    """

    def __init__(
        self,
        client: PlatformClient,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_result: Callable[[str], None] = lambda result: None,
        on_fenced: Callable[[uuid.UUID, int], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.on_result = on_result
        self.on_fenced = on_fenced
        self._pending: dict[uuid.UUID, Report] = {}
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    @property
    def pending(self) -> dict[uuid.UUID, Report]:
        return dict(self._pending)

    def report(self, tenant_id: uuid.UUID, state: str, generation: int) -> None:
        if not self.client.enabled:
            return
        if tenant_id in self._pending:
            self.on_result("superseded")
        self._pending[tenant_id] = Report(tenant_id, state, generation)
        if tenant_id not in self._tasks:
            self._tasks[tenant_id] = asyncio.create_task(self._run(tenant_id), name=f"report-{tenant_id}")

    async def _run(self, tenant_id: uuid.UUID) -> None:
        delay = self.backoff_initial
        try:
            while (rep := self._pending.get(tenant_id)) is not None:
                try:
                    await self.client.report_state(rep.tenant_id, rep.state, rep.generation)
                    self.on_result("sent")
                except PlatformUnavailable as exc:
                    self.on_result("retry")
                    log.warning(
                        "state report %s=%s gen %s failed (%s); retrying in %.2fs",
                        tenant_id,
                        rep.state,
                        rep.generation,
                        exc,
                        delay,
                    )
                    # A newer report does not cut the wait short (the platform is still down); it replaces the payload.
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only
                    delay = min(delay * 2, self.backoff_max)
                    continue
                except PlatformRefused as exc:
                    self.on_result("refused")
                    log.warning("state report %s=%s gen %s refused: %s", tenant_id, rep.state, rep.generation, exc)
                    if exc.code == "stale_generation" and self.on_fenced is not None:
                        await self.on_fenced(tenant_id, rep.generation)
                except Exception:
                    self.on_result("error")
                    log.exception("state report %s failed unexpectedly", tenant_id)
                delay = self.backoff_initial
                if self._pending.get(tenant_id) is rep:
                    del self._pending[tenant_id]
        finally:
            self._tasks.pop(tenant_id, None)

    async def drain(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) for pending reports to go out; True when none is left."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return not self._pending

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self.client.close()
