from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from core.api_errors import api_not_found
from overview.views import overview
from percolate_platform.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/overview/", overview, name="overview"),
    path("admin/", admin.site.urls),
    path("billing/", include("billing.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("tenants.urls")),
    path("api/", include("moves.urls")),
    # Keep last: any other path under /api/ (a malformed id included) is a JSON 404, with DEBUG on or off.
    re_path(r"^api(?:/|$)", api_not_found),
]

handler400 = "core.api_errors.bad_request"
handler403 = "core.api_errors.permission_denied"
handler404 = "core.api_errors.page_not_found"
handler500 = "core.api_errors.server_error"
