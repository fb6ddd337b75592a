"""The caller cache: a known Authorization header skips the full check only while nothing it relied on changed.
(The end-to-end cases, through the gateway, are in test_app.)"""

import uuid

from gateway.auth.callers import CallerCache, credentials
from gateway.auth.tokens import TokenClaims
from gateway.auth.verify import Caller
from tenants.selectors import DeviceKey, TenantRoute


def test_a_cached_caller_lapses_with_its_token_route_or_device() -> None:
    class Fresh:
        def __init__(self) -> None:
            self.values: dict[uuid.UUID, object] = {}

        def fresh(self, key: uuid.UUID) -> object:
            return self.values.get(key)

    now = [1000.0]
    routes, devices = Fresh(), Fresh()
    cache = CallerCache(routes=routes, devices=devices, max_entries=2, clock=lambda: now[0])
    tenant_id, device_id = uuid.uuid4(), uuid.uuid4()
    route = TenantRoute(tenant_id, "B", "active", "standard", "hot", 1, None)
    device = DeviceKey(device_id, tenant_id, "key", False)
    routes.values[tenant_id], devices.values[device_id] = route, device
    caller = Caller(TokenClaims(tenant_id, "device", device_id, expires_at=1100), route, device)
    cache.put(b"Bearer t", caller)
    assert cache.get(b"Bearer t") is caller
    devices.values[device_id] = DeviceKey(device_id, tenant_id, "key", True)  # reloaded after an invalidation
    assert cache.get(b"Bearer t") is None

    cache.put(b"Bearer t", caller._replace(device=None))
    routes.values[tenant_id] = TenantRoute(tenant_id, "B", "suspended", "standard", "hot", 1, None)
    assert cache.get(b"Bearer t") is None

    routes.values[tenant_id] = route
    cache.put(b"Bearer t", caller._replace(device=None))
    now[0] = 1100 + 31  # past expiry and leeway
    assert cache.get(b"Bearer t") is None
    for key in (b"a", b"b", b"c"):
        cache.put(key, caller)
    assert len(cache._entries) <= 2


def test_credentials_are_read_in_one_pass_first_named_tenant_wins() -> None:
    headers = [
        (b"Authorization", b"Bearer a"),
        (b"x-percolate-tenant", b"first"),
        (b"authorization", b"Bearer b"),
        (b"X-Percolate-Tenant", b"second"),
    ]
    assert credentials(headers) == ([b"Bearer a", b"Bearer b"], b"first")
    assert credentials([]) == ([], None)
