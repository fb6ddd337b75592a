"""Where each tier's pods are: a static list (local, tests), or the tier's headless Service DNS (Kubernetes),
re-resolved in the background so pods joining and leaving reach the hash ring without a restart."""

import asyncio
import logging
import socket

from gateway.hashing import PodSet

log = logging.getLogger(__name__)


class Discovery:
    def __init__(
        self,
        static: dict[str, list[str]],
        *,
        dns: dict[str, str] | None = None,
        port: int = 8000,
        eject_seconds: float = 10.0,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.tiers: dict[str, PodSet] = {
            tier: PodSet(pods=tuple(pods), eject_seconds=eject_seconds) for tier, pods in static.items()
        }
        self._dns = dns or {}
        self._port = port
        self._refresh = refresh_seconds
        self._eject_seconds = eject_seconds
        self._task: asyncio.Task[None] | None = None

    def pods(self, tier: str) -> PodSet:
        if tier not in self.tiers:
            self.tiers[tier] = PodSet(pods=(), eject_seconds=self._eject_seconds)
        return self.tiers[tier]

    def has_pods(self) -> bool:
        return any(pod_set.pods for pod_set in self.tiers.values())

    def start(self) -> None:
        if self._dns and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def resolve_once(self) -> None:
        loop = asyncio.get_running_loop()
        for tier, name in self._dns.items():
            try:
                infos = await loop.getaddrinfo(name, self._port, type=socket.SOCK_STREAM)
            except OSError:
                log.warning("discovery: %s does not resolve; keeping %d known pods", name, len(self.pods(tier).pods))
                continue
            pods = tuple(sorted({f"{info[4][0]}:{self._port}" for info in infos}))
            if pods != tuple(self.pods(tier).pods):
                log.info("discovery: tier %s now has %d pods", tier, len(pods))
                self.pods(tier).pods = pods

    async def _refresh_forever(self) -> None:
        while True:
            await self.resolve_once()
            await asyncio.sleep(self._refresh)
