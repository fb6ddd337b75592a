"""Where each tier's pods are: a static list (local, tests), or the tier's headless Service DNS (Kubernetes),
re-resolved in the background so pods joining and leaving reach the hash ring without a restart.

A pod listens twice (tiernode): client requests are forwarded to its public address (`host:port`, the pod's name on
the hash ring), the gateway's own calls (warm, deliver) go to its internal address. In Kubernetes every pod uses the
same two ports (`GATEWAY_POD_PORT`, `GATEWAY_POD_INTERNAL_PORT`); a static entry may name its own internal port as
`host:port/internal_port` (local nodes share one host).
"""

import asyncio
import logging
import socket

from gateway.pods.hashing import PodSet

log = logging.getLogger(__name__)


class Discovery:
    def __init__(
        self,
        static: dict[str, list[str]],
        *,
        dns: dict[str, str] | None = None,
        port: int = 8000,
        internal_port: int = 8001,
        eject_seconds: float = 10.0,
        refresh_seconds: float = 5.0,
    ) -> None:
        self._internal: dict[str, str] = {}
        self._internal_port = internal_port
        self.tiers: dict[str, PodSet] = {
            tier: PodSet(pods=tuple(self._entry(pod) for pod in pods), eject_seconds=eject_seconds)
            for tier, pods in static.items()
        }
        self._dns = dns or {}
        self._port = port
        self._refresh = refresh_seconds
        self._eject_seconds = eject_seconds
        self._task: asyncio.Task[None] | None = None

    def _entry(self, entry: str) -> str:
        """`host:port` or `host:port/internal_port`: the public address, remembering the internal one."""
        public, _, internal_port = entry.partition("/")
        host = public.rpartition(":")[0]
        self._internal[public] = f"{host}:{internal_port or self._internal_port}"
        return public

    def internal_address(self, pod: str) -> str:
        """Where the gateway's own calls to `pod` (a public address from `pods()`) go."""
        address = self._internal.get(pod)
        if address is None:
            address = self._internal[pod] = f"{pod.rpartition(':')[0]}:{self._internal_port}"
        return address

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
