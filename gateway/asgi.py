"""The gateway process: `uvicorn gateway.asgi:application --port 8080` (HTTP and WebSocket through Channels'
ProtocolTypeRouter; no Django middleware on this path)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
django.setup()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from gateway.app import application as gateway_app  # noqa: E402

application = ProtocolTypeRouter({"http": gateway_app, "websocket": gateway_app, "lifespan": gateway_app})
