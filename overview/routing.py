from django.urls import path

from overview.consumers import OverviewConsumer

websocket_urlpatterns = [path("ws/overview/", OverviewConsumer.as_asgi())]
