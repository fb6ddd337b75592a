"""The gateway's own endpoints, answered without a tenant: ``/healthz``, ``/readyz`` and ``/metrics``."""

import asyncio
import time

from prometheus_client import generate_latest

from gateway import metrics
from gateway.errors import Send, send_json
from gateway.platform import Platform
from gateway.pods.discovery import Discovery
from gateway.surface import OWN_PATHS as OWN_PATHS


class OwnEndpoints:
    def __init__(self, discovery: Discovery, platform: Platform) -> None:
        self.discovery = discovery
        self.platform = platform
        self._db_ok_until = 0.0

    async def answer(self, path: str, send: Send) -> None:
        """One of OWN_PATHS."""
        if path == "/healthz":
            await send_json(send, 200, b'{"status": "ok"}')
        elif path == "/readyz":
            ready, reason = await self.readiness()
            await send_json(
                send, 200 if ready else 503, f'{{"ready": {str(ready).lower()}, "reason": "{reason}"}}'.encode()
            )
        else:
            body = generate_latest(metrics.registry)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain; version=0.0.4")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def readiness(self) -> tuple[bool, str]:
        if not self.discovery.has_pods():
            return False, "no tier pods discovered"
        if time.monotonic() > self._db_ok_until:
            try:
                await asyncio.wait_for(self.platform.ping_database(), 2)
            except Exception:  # any failure means not ready
                return False, "database does not answer"
            self._db_ok_until = time.monotonic() + 5
        return True, "ok"
