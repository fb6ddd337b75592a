"""The overview page, in the admin's frame; its numbers arrive over the WebSocket (overview.consumers)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from overview.live import current
from overview.permissions import may_view


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    if not may_view(request.user):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Platform overview",
        "snapshot": current(),
        "websocket_port": settings.OVERVIEW_WEBSOCKET_PORT,
    }
    return TemplateResponse(request, "overview/overview.html", context)
