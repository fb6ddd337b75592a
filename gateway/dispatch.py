"""Hot or cold: the one place that decides where a tenant's request goes.

- cold (gateway.cold) when it is a chat request with its body whole, the cold path is on, and the tenant is not hot
  (and this gateway has not warmed it since);
- refused with 503 `tenant_moving` when a tier move holds a tenant that is not hot and the cold path cannot take the
  request (only the cold path can hold a request through a move; it must not load the tenant on the tier it leaves);
- otherwise hot (gateway.proxy.hot); and if the pod answers that it does not hold the tenant, cold after all.
"""

from gateway.cold.path import ColdPath
from gateway.errors import Receive, Send
from gateway.proxy.hot import NOT_HELD, HotPath, refuse
from gateway.request import GatewayRequest


class Dispatch:
    def __init__(self, hot: HotPath, cold: ColdPath) -> None:
        self.hot = hot
        self.cold = cold

    async def __call__(self, request: GatewayRequest, receive: Receive, send: Send) -> int:
        route = request.route
        cold_eligible = request.chat and request.whole and self.cold.enabled
        if cold_eligible and self.cold.is_cold(route):
            return await self.cold.handle(request, receive, send)
        if route.moving and route.state != "hot":
            return await refuse(send, 503, "tenant_moving", "the workspace is moving tiers", [(b"retry-after", b"1")])
        status = await self.hot.forward(request, receive, send, cold_eligible=cold_eligible)
        if status is NOT_HELD:  # the pod does not hold the tenant (it was evicted meanwhile): cold after all
            self.cold.forget_warm(route.tenant_id)
            return await self.cold.handle(request, receive, send)
        return status
