"""The gateway's authentication of a request: a caller it already knows (CallerCache), else the full check of
gateway.auth.verify against the gateway's device and route caches."""

import time
import uuid
from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth.tokens import LEEWAY_SECONDS
from gateway.auth.verify import Caller, VerifiedTokens, authenticate, named_tenant_matches
from gateway.cache import TtlCache
from gateway.headers import Headers
from gateway.platform import DeviceKey, TenantRoute


class FreshCache(Protocol):
    def fresh(self, key: uuid.UUID) -> object: ...


class CallerCache:
    """Callers by their Authorization header, so a client's next request costs two dictionary lookups instead of
    parsing the header, the token cache and two awaited cache reads. An entry is good only while its token is
    unexpired and the route (and device key) it was built from are still the very objects the gateway's caches hold:
    a pub/sub invalidation, a refresh or an expiry replaces them, and the next request authenticates in full."""

    def __init__(
        self,
        *,
        routes: FreshCache,
        devices: FreshCache,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._routes = routes
        self._devices = devices
        self._entries: dict[bytes, Caller] = {}
        self._max = max_entries
        self._clock = clock

    def get(self, authorization: bytes) -> Caller | None:
        caller = self._entries.get(authorization)
        if caller is None:
            return None
        if (
            caller.claims.expires_at + LEEWAY_SECONDS < self._clock()
            or self._routes.fresh(caller.route.tenant_id) is not caller.route
            or (caller.device is not None and self._devices.fresh(caller.device.device_id) is not caller.device)
        ):
            del self._entries[authorization]
            return None
        return caller

    def put(self, authorization: bytes, caller: Caller) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()  # cheap and rare; the next requests authenticate in full
        self._entries[authorization] = caller


def credentials(headers: Headers) -> tuple[list[bytes], bytes | None]:
    """The Authorization headers and the first X-Percolate-Tenant header, in one pass."""
    authorization: list[bytes] = []
    named: bytes | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            authorization.append(value)
        elif lowered == b"x-percolate-tenant" and named is None:
            named = value
    return authorization, named


class Authenticator:
    def __init__(
        self,
        *,
        platform_key: Ed25519PublicKey,
        routes: TtlCache[uuid.UUID, TenantRoute | None],
        devices: TtlCache[uuid.UUID, DeviceKey | None],
    ) -> None:
        self._platform_key = platform_key
        self._routes = routes
        self._devices = devices
        self.verified = VerifiedTokens()
        self.callers = CallerCache(routes=routes, devices=devices)

    def known(self, headers: Headers) -> Caller | None:
        """The caller, if this very Authorization header was accepted before and nothing it relied on changed; no
        await. None means: ask `caller`, which decides (and refuses) in full."""
        authorization, named = credentials(headers)
        if len(authorization) != 1:
            return None
        caller = self.callers.get(authorization[0])
        if caller is None or (named is not None and not named_tenant_matches(named, caller.claims.tenant_id)):
            return None
        return caller

    async def caller(self, headers: Headers) -> Caller:
        """Who is calling, or TokenRejected (401/403)."""
        authorization, named = credentials(headers)
        caller = await authenticate(
            authorization,
            named_tenant=named,
            platform_key=self._platform_key,
            device_keys=self._devices.get,
            routes=self._routes.get,
            verified=self.verified,
        )
        self.callers.put(authorization[0], caller)
        return caller
