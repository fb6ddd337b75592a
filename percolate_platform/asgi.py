"""ASGI entry point: Django over HTTP, and the staff overview's WebSocket (session-authenticated, same-host origins).

Served by the `overview` process locally (uvicorn); `runserver` keeps serving the admin's HTTP pages.
"""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")

django_asgi_app = get_asgi_application()

from overview.routing import websocket_urlpatterns  # noqa: E402  (after Django is set up)

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
