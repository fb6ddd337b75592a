"""The gateway's ASGI application (HTTP and WebSocket through Channels' ProtocolTypeRouter; no Django middleware on
this path). Run it with `python -m gateway`, which starts uvicorn on it."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
django.setup()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware  # noqa: E402

from gateway.app import application as gateway_app  # noqa: E402

router = ProtocolTypeRouter({"http": gateway_app, "websocket": gateway_app, "lifespan": gateway_app})
# Behind a load balancer the client's address comes from its X-Forwarded-For, trusted only from the listed proxies.
application = (
    ProxyHeadersMiddleware(router, trusted_hosts=settings.GATEWAY_TRUSTED_PROXIES)
    if settings.GATEWAY_TRUSTED_PROXIES
    else router
)
